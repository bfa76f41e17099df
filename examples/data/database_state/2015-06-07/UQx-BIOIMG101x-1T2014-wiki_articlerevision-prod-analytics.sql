id	revision_number	user_message	automatic_log	ip_address	user_id	modified	created	previous_revision_id	deleted	locked	article_id	content	title
901	1			192.0.2.10	440076	2014-02-20 04:30:00	2014-02-20 04:30:00	NULL	0	0	900	= Fundamentals of Biomedical Imaging =\nThis is the wiki for **BIOIMG101x**.	BIOIMG101x
902	2	Added links		NULL	440076	2014-02-23 04:30:00	2014-02-23 04:30:00	901	0	0	900	= Fundamentals of Biomedical Imaging =\nThis is the wiki for **BIOIMG101x**.\n\n* [[Glossary]]\n* Tabs\there and a backslash \\ too	BIOIMG101x
903	1			198.51.100.7	440076	2014-02-25 04:30:00	2014-02-25 04:30:00	NULL	0	0	901	Glossary\n--------\nTerm: «meaning»	Glossary
