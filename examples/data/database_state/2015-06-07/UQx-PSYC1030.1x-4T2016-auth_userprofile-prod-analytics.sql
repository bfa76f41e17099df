id	user_id	name	language	location	meta	courseware	gender	mailing_address	year_of_birth	level_of_education	goals	allow_certificate	country	city	bio	profile_image_uploaded_at
439076	440076	Sam Staffer				course.xml	NULL	12 Example Street\r\nSampleton QLD 4000\r\nAustralia	1974	p_oth	Understand light microscopy.\r\nUse it in my lab.	1	AU	Brisbane		NULL
3512625	3513645	Rosa Ejemplo				course.xml	m	12 Example Street\r\nSampleton QLD 4000\r\nAustralia	NULL	jhs	Understand light microscopy.\r\nUse it in my lab.	1	IN	Springfield		NULL
3517070	3518091	Søren Prøve				course.xml		PO Box 99\r\nTestville	1976	NULL	1.\tlearn the basics\r\n2.\tpass the exam	1			NULL	NULL
3590993	3592015	Tariq Mithal				course.xml		1 Placeholder Road, Demo City	1998	b	Career change – into research	1	AU	Brisbane		NULL
3742292	3743315	Uma Udaharan	English			course.xml			1990	other	line one\nline two (LF only)	1	AU	Brisbane	NULL	NULL
3798510	3799534	Vera Probe				course.xml	o	NULL	1980	p_se		1	AU			NULL
3954216	3955241	Nguyễn Mẫu				course.xml	f	PO Box 99\r\nTestville	1976	el	Understand light microscopy.\r\nUse it in my lab.	1	AU		NULL	NULL
4024467	4025493	Xavier Essai				course.xml	f	1 Placeholder Road, Demo City	NULL	b	NULL	1	CN	Springfield		NULL
4031913	4032940	Yara Amostra				course.xml	f		1972		Career change – into research	1	IN	Springfield	NULL	NULL
4135060	4136088	Siobhán O'Sample				course.xml	f	12 Example Street\r\nSampleton QLD 4000\r\nAustralia	1977	m	line one\nline two (LF only)	1	US	Springfield		NULL
4223679	4224708	Zane Trial				course.xml	m	NULL	1964	NULL		1	IN		NULL	NULL
4289787	4290817	Aiko Rei				course.xml	m	1 Placeholder Road, Demo City	1986		Understand light microscopy.\r\nUse it in my lab.	1	CN			NULL
4832947	4833978	Ben Testworth				course.xml	m		1968	none	1.\tlearn the basics\r\n2.\tpass the exam	1		Springfield	NULL	NULL
5309037	5310069	Carla Proefje				course.xml	m	12 Example Street\r\nSampleton QLD 4000\r\nAustralia	NULL	m	Career change – into research	1		Springfield		NULL
5552994	5554027	Dev Namuna	English			course.xml		PO Box 99\r\nTestville	1987	jhs	line one\nline two (LF only)	1	CN	Springfield	NULL	NULL
5604615	5605649	Eve Harness				course.xml	m	NULL	1955	p		1	GB			NULL
5617466	5618501	Finn Mockingbird				course.xml			1977	m	NULL	1			NULL	NULL
5804986	5806022	Gia Campione				course.xml	f	12 Example Street\r\nSampleton QLD 4000\r\nAustralia	1978	m	1.\tlearn the basics\r\n2.\tpass the exam	1	GB	Springfield		NULL
5987313	5988350	Hugo Exemple				course.xml		PO Box 99\r\nTestville	1998	NULL	Career change – into research	1	GB		NULL	NULL
6820901	6821939	Iris Paradigm				course.xml	m	1 Placeholder Road, Demo City	NULL	b	line one\nline two (LF only)	1	GB	Springfield		NULL
7213821	7214860	Jonas Pavyzdys				course.xml	f	NULL	1985	p_se		1	US	Brisbane	NULL	NULL
7353190	7354230	Kira Primjer				course.xml		12 Example Street\r\nSampleton QLD 4000\r\nAustralia	1993	el	Understand light microscopy.\r\nUse it in my lab.	1	CN	Brisbane		NULL
7981167	7982208	Leo Przykład				course.xml	m	PO Box 99\r\nTestville	1977	a	1.\tlearn the basics\r\n2.\tpass the exam	1	AU	Springfield	NULL	NULL
8081431	8082473	Maja Exempel				course.xml	m	1 Placeholder Road, Demo City	1950	p_se	Career change – into research	1	GB	Brisbane		NULL
8199676	8200719	Nils Eksempel	English			course.xml	NULL		1993	none	line one\nline two (LF only)	1			NULL	NULL
