id	username	first_name	last_name	email	password	is_staff	is_active	is_superuser	last_login	date_joined	status	email_key	avatar_type	country	show_country	date_of_birth	interesting_tags	ignored_tags	email_tag_filter_strategy	display_tag_filter_strategy	consecutive_days_visit_count
440076	uqx_staff	Sam	Staffer	uqx.staff@example.org		1	1	0	2015-05-28 04:13:30	2013-01-10 15:27:23		NULL			0	NULL			0	0	0
446802	ada_sample	Ada	Sample	ada.sample@example.org		0	1	0	2015-05-23 03:36:00	2013-01-26 12:31:08		NULL			0	NULL			0	0	0
492571	zoe_example	Zoë	Exämple	zoe.example@example.org		0	1	0	2015-05-28 04:21:48	2013-02-12 01:55:00		NULL			0	NULL			0	0	0
799796	li_shili	示例	李	li.shili@example.org		0	1	0	2015-05-25 15:22:00	2013-02-27 22:34:24		NULL			0	NULL			0	0	0
825951	bruno_p	Bruno	Placeholder	bruno.p@example.org		0	1	0	2015-05-21 05:40:57	2013-03-15 13:53:14		NULL			0	NULL			0	0	0
855945	chidi_t	Chidi	Testcase	chidi.t@example.org		0	1	0	2015-05-25 08:10:35	2013-03-31 15:30:58		NULL			0	NULL			0	0	0
993691	dana_fixture	Dana	Fixture	dana.fixture@example.org		0	1	0	2015-05-24 12:57:13	2013-04-17 03:35:28		NULL			0	NULL			0	0	0
1057933	emile_demo	Émile	Démo	emile.demo@example.org		0	1	0	2015-05-26 21:33:33	2013-05-02 19:44:55		NULL			0	NULL			0	0	0
1442316	farah_mock	Farah	Mock	farah.mock@example.org		0	1	0	2015-05-26 13:50:06	2013-05-19 00:39:58		NULL			0	NULL			0	0	0
1517261	gus_stub	Gus	Stub	gus.stub@example.org		0	0	0	NULL	2013-06-04 05:49:41		NULL			0	NULL			0	0	0
1581524	hana_d	Hana	Dummy	hana.d@example.org		0	1	0	2015-05-23 08:45:32	2013-06-19 21:27:16		NULL			0	NULL			0	0	0
1649976	ivo_specimen	Ivo	Specimen	ivo.specimen@example.org		0	1	0	2015-05-26 02:11:21	2013-07-06 00:36:43		NULL			0	NULL			0	0	0
1878018	jose_muestra	José	Muestra	jose.muestra@example.org		0	1	0	2015-05-20 08:24:32	2013-07-22 07:07:16		NULL			0	NULL			0	0	0
1966394	kai_example	Kai	Example	kai.example@example.org		0	1	0	NULL	2013-08-07 07:02:24		NULL			0	NULL			0	0	0
2088843	lena_b	Lena	Beispiel	lena.b@example.org		0	1	0	2015-06-02 02:14:47	2013-08-22 16:09:50		NULL			0	NULL			0	0	0
2135346	mika_e	Mika	Esimerkki	mika.e@example.org		0	1	0	2015-05-22 14:55:28	2013-09-08 02:33:06		NULL			0	NULL			0	0	0
2138447	noor_v	Noor	Voorbeeld	noor.v@example.org		0	1	0	2015-05-30 12:58:55	2013-09-23 19:09:26		NULL			0	NULL			0	0	0
2509792	olga_primer	Ольга	Пример	olga.primer@example.org		0	1	0	2015-05-27 16:14:31	2013-10-09 22:45:51		NULL			0	NULL			0	0	0
3272111	pia_exemplo	Pia	Exemplo	pia.exemplo@example.org		0	1	0	2015-05-30 01:42:01	2013-10-25 23:14:13		NULL			0	NULL			0	0	0
3281915	quinn_sb	Quinn	Sandbox	quinn.sb@example.org		0	1	0	2015-05-22 18:26:48	2013-11-11 01:53:31		NULL			0	NULL			0	0	0
3513645	rosa_ejemplo	Rosa	Ejemplo	rosa.ejemplo@example.org		0	1	0	2015-05-23 16:08:13	2013-11-27 04:26:49		NULL			0	NULL			0	0	0
3518091	soren_prove	Søren	Prøve	soren.prove@example.org		0	1	0	2015-05-27 01:22:36	2013-12-12 22:02:25		NULL			0	NULL			0	0	0
3592015	tariq_m	Tariq	Mithal	tariq.m@example.org		0	1	0	2015-05-27 22:21:10	2013-12-29 01:48:56		NULL			0	NULL			0	0	0
3743315	uma_u	Uma	Udaharan	uma.u@example.org		0	1	0	2015-05-28 17:14:41	2014-01-13 13:39:01		NULL			0	NULL			0	0	0
3799534	vera_probe	Vera	Probe	vera.probe@example.org		0	1	0	2015-05-27 08:55:55	2014-01-29 16:58:03		NULL			0	NULL			0	0	0
3955241	nguyen_mau	Mẫu	Nguyễn	nguyen.mau@example.org		0	1	0	2015-05-21 11:56:24	2014-02-14 09:22:34		NULL			0	NULL			0	0	0
4025493	xavier_essai	Xavier	Essai	xavier.essai@example.org		0	1	0	2015-05-28 11:54:21	2014-03-02 16:50:27		NULL			0	NULL			0	0	0
4032940	yara_a	Yara	Amostra	yara.a@example.org		0	1	0	2015-05-27 15:57:38	2014-03-19 07:06:39		NULL			0	NULL			0	0	0
4136088	siobhan_os	Siobhán	O'Sample	siobhan.os@example.org		0	1	0	2015-05-26 00:44:54	2014-04-03 17:36:52		NULL			0	NULL			0	0	0
4224708	zane_trial	Zane	Trial	zane.trial@example.org		0	1	0	2015-06-03 00:51:36	2014-04-20 05:02:06		NULL			0	NULL			0	0	0
