id	current_revision_id	created	modified	owner_id	group_id	group_read	group_write	other_read	other_write
900	902	2014-02-20 04:30:00	2014-02-23 04:30:00	440076	NULL	1	1	1	0
901	903	2014-02-25 04:30:00	2014-02-25 04:30:00	440076	NULL	1	1	1	0
