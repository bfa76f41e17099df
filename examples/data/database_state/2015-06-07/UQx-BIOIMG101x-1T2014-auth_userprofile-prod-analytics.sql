id	user_id	name	language	location	meta	courseware	gender	mailing_address	year_of_birth	level_of_education	goals	allow_certificate	country	city	bio	profile_image_uploaded_at
439076	440076	Sam Staffer				course.xml	NULL	12 Example Street\nSampleton QLD 4000\nAustralia	1974	p_oth	Understand light microscopy.\nUse it in my lab.	1	AU	Brisbane		NULL
445801	446802	Ada Sample			{"old_names": [["Ada Sampel", "Typo in my name", "2015-02-11T03:14:07.000000+00:00"]]}	course.xml	m	PO Box 99\nTestville	1965	b	1.\tlearn the basics\n2.\tpass the exam	1	US	Brisbane	NULL	NULL
491569	492571	Zoë Exämple				course.xml	m	1 Placeholder Road, Demo City	NULL	p	Career change – into research	1	AU	Springfield		NULL
798793	799796	李 示例	English			course.xml	NULL		1995	el	line one\nline two (LF only)	1	AU	Brisbane	NULL	NULL
824947	825951	Bruno Placeholder				course.xml		NULL	1968	m		1	IN	Springfield		NULL
854940	855945	Chidi Testcase			{"6002x_exit_response": {"rating": ["5"], "teach_ee": ["false"]}}	course.xml	m	PO Box 99\nTestville	1977	NULL	Understand light microscopy.\nUse it in my lab.	1	AU	Brisbane	NULL	NULL
992685	993691	Dana Fixture				course.xml		1 Placeholder Road, Demo City	1954	other	1.\tlearn the basics\n2.\tpass the exam	1	IN	Brisbane		NULL
1056926	1057933	Émile Démo				course.xml			1971	b	Career change – into research	1			NULL	NULL
1441308	1442316	Farah Mock				course.xml	f	12 Example Street\nSampleton QLD 4000\nAustralia	NULL	p_se	NULL	1	AU	Springfield		NULL
1516252	1517261	Gus Stub			{"note": "exported from C:\\\\Users\\\\sample"}	course.xml	m	NULL	1953	p_oth		1			NULL	NULL
1580514	1581524	Hana Dummy				course.xml	f	1 Placeholder Road, Demo City	1980	m	Understand light microscopy.\nUse it in my lab.	1	AU	Brisbane		NULL
1648965	1649976	Ivo Specimen				course.xml			1988	el	1.\tlearn the basics\n2.\tpass the exam	1	IN		NULL	NULL
1877006	1878018	José Muestra				course.xml	m	12 Example Street\nSampleton QLD 4000\nAustralia	1975	p_se	Career change – into research	1	AU			NULL
1965381	1966394	Kai Example	English		{}	course.xml	o	PO Box 99\nTestville	1974	NULL	line one\nline two (LF only)	1	US	Springfield	NULL	NULL
2087829	2088843	Lena Beispiel				course.xml	f	NULL	NULL	jhs		1	AU			NULL
2134331	2135346	Mika Esimerkki				course.xml	f		1965	hs	Understand light microscopy.\nUse it in my lab.	1		Brisbane	NULL	NULL
2137431	2138447	Noor Voorbeeld				course.xml	NULL	12 Example Street\nSampleton QLD 4000\nAustralia	1984	el	1.\tlearn the basics\n2.\tpass the exam	1		Springfield		NULL
2508775	2509792	Ольга Пример				course.xml	m	PO Box 99\nTestville	1985	m	NULL	1	GB		NULL	NULL
3271093	3272111	Pia Exemplo				course.xml	f	1 Placeholder Road, Demo City	1978	other	line one\nline two (LF only)	1	AU	Springfield		NULL
3280896	3281915	Quinn Sandbox				course.xml	o	NULL	1981			1	GB	Brisbane	NULL	NULL
3512625	3513645	Rosa Ejemplo				course.xml	m	12 Example Street\nSampleton QLD 4000\nAustralia	NULL	jhs	Understand light microscopy.\nUse it in my lab.	1	IN	Springfield		NULL
3517070	3518091	Søren Prøve				course.xml		PO Box 99\nTestville	1976	NULL	1.\tlearn the basics\n2.\tpass the exam	1			NULL	NULL
3590993	3592015	Tariq Mithal				course.xml		1 Placeholder Road, Demo City	1998	b	Career change – into research	1	AU	Brisbane		NULL
3742292	3743315	Uma Udaharan	English			course.xml			1990	other	line one\nline two (LF only)	1	AU	Brisbane	NULL	NULL
3798510	3799534	Vera Probe				course.xml	o	NULL	1980	p_se		1	AU			NULL
3954216	3955241	Nguyễn Mẫu				course.xml	f	PO Box 99\nTestville	1976	el	Understand light microscopy.\nUse it in my lab.	1	AU		NULL	NULL
4024467	4025493	Xavier Essai				course.xml	f	1 Placeholder Road, Demo City	NULL	b	NULL	1	CN	Springfield		NULL
4031913	4032940	Yara Amostra				course.xml	f		1972		Career change – into research	1	IN	Springfield	NULL	NULL
4135060	4136088	Siobhán O'Sample				course.xml	f	12 Example Street\nSampleton QLD 4000\nAustralia	1977	m	line one\nline two (LF only)	1	US	Springfield		NULL
4223679	4224708	Zane Trial				course.xml	m	NULL	1964	NULL		1	IN		NULL	NULL
