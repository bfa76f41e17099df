id	current_revision_id	created	modified	owner_id	group_id	group_read	group_write	other_read	other_write
910	912	2015-03-30 06:01:00	2015-04-02 06:01:00	440076	NULL	1	1	1	0
911	913	2015-04-04 06:01:00	2015-04-04 06:01:00	440076	NULL	1	1	1	0
