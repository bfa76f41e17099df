id	user_id	name	language	location	meta	courseware	gender	mailing_address	year_of_birth	level_of_education	goals	allow_certificate	country	city	bio	profile_image_uploaded_at
439076	440076	Sam Staffer				course.xml	NULL	12 Example Street\nSampleton QLD 4000\nAustralia	1974	p_oth	Understand light microscopy.\nUse it in my lab.	1	AU	Brisbane		NULL
445801	446802	Ada Sample			{"old_names": [["Ada Sampel", "Typo in my name", "2015-02-11T03:14:07.000000+00:00"]]}	course.xml	m	PO Box 99\nTestville	1965	b	1.\tlearn the basics\n2.\tpass the exam	1	US	Brisbane	NULL	NULL
491569	492571	Zoë Exämple				course.xml	m	1 Placeholder Road, Demo City	NULL	p	Career change – into research	1	AU	Springfield		NULL
798793	799796	李 示例	English			course.xml	NULL		1995	el	line one\nline two (LF only)	1	AU	Brisbane	NULL	NULL
824947	825951	Bruno Placeholder				course.xml		NULL	1968	m		1	IN	Springfield		NULL
3954216	3955241	Nguyễn Mẫu				course.xml	f	PO Box 99\nTestville	1976	el	Understand light microscopy.\nUse it in my lab.	1	AU		NULL	NULL
4024467	4025493	Xavier Essai				course.xml	f	1 Placeholder Road, Demo City	NULL	b	NULL	1	CN	Springfield		NULL
4031913	4032940	Yara Amostra				course.xml	f		1972		Career change – into research	1	IN	Springfield	NULL	NULL
4135060	4136088	Siobhán O'Sample				course.xml	f	12 Example Street\nSampleton QLD 4000\nAustralia	1977	m	line one\nline two (LF only)	1	US	Springfield		NULL
4223679	4224708	Zane Trial				course.xml	m	NULL	1964	NULL		1	IN		NULL	NULL
8336454	8337498	Omar Mithal				course.xml	NULL	NULL	NULL	p	NULL	1	GB	Springfield		NULL
8650504	8651549	Paula Exemplar				course.xml		PO Box 99\nTestville	1958	NULL	Understand light microscopy.\nUse it in my lab.	1	US		NULL	NULL
8833770	8834816	Raj Udaharan				course.xml	f	1 Placeholder Road, Demo City	1983	m	1.\tlearn the basics\n2.\tpass the exam	1	US	Springfield		NULL
8840546	8841593	Sara Esempio				course.xml	m		1951	other	Career change – into research	1	CN		NULL	NULL
9007072	9008120	Tom Prototype				course.xml	m	12 Example Street\nSampleton QLD 4000\nAustralia	1957	b	line one\nline two (LF only)	1	IN			NULL
9226990	9228039	Ula Örnek				course.xml	m	NULL	1976	m		1	US	Brisbane	NULL	NULL
