id	revision_number	user_message	automatic_log	ip_address	user_id	modified	created	previous_revision_id	deleted	locked	article_id	content	title
921	1			192.0.2.10	440076	2015-03-30 06:01:00	2015-03-30 06:01:00	NULL	0	0	920	= Demonstration Course (edge) =\nThis is the wiki for **DEMO101x**.	DEMO101x
922	2	Added links		NULL	440076	2015-04-02 06:01:00	2015-04-02 06:01:00	921	0	0	920	= Demonstration Course (edge) =\nThis is the wiki for **DEMO101x**.\n\n* [[Glossary]]\n* Tabs\there and a backslash \\ too	DEMO101x
923	1			198.51.100.7	440076	2015-04-04 06:01:00	2015-04-04 06:01:00	NULL	0	0	921	Glossary\n--------\nTerm: «meaning»	Glossary
