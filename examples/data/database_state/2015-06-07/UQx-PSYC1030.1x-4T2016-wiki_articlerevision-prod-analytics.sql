id	revision_number	user_message	automatic_log	ip_address	user_id	modified	created	previous_revision_id	deleted	locked	article_id	content	title
911	1			192.0.2.10	440076	2015-03-30 06:01:00	2015-03-30 06:01:00	NULL	0	0	910	= Introduction to Psychology: The Psychology of Learning =\r\nThis is the wiki for **PSYC1030.1x**.	PSYC1030.1x
912	2	Added links		NULL	440076	2015-04-02 06:01:00	2015-04-02 06:01:00	911	0	0	910	= Introduction to Psychology: The Psychology of Learning =\r\nThis is the wiki for **PSYC1030.1x**.\r\n\r\n* [[Glossary]]\r\n* Tabs\there and a backslash \\ too	PSYC1030.1x
913	1			198.51.100.7	440076	2015-04-04 06:01:00	2015-04-04 06:01:00	NULL	0	0	911	Glossary\r\n--------\r\nTerm: «meaning»	Glossary
