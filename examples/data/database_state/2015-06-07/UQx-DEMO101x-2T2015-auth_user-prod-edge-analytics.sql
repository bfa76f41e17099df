id	username	first_name	last_name	email	password	is_staff	is_active	is_superuser	last_login	date_joined	status	email_key	avatar_type	country	show_country	date_of_birth	interesting_tags	ignored_tags	email_tag_filter_strategy	display_tag_filter_strategy	consecutive_days_visit_count
440076	uqx_staff	Sam	Staffer	uqx.staff@example.org		1	1	0	2015-05-28 04:13:30	2013-01-10 15:27:23		NULL			0	NULL			0	0	0
446802	ada_sample	Ada	Sample	ada.sample@example.org		0	1	0	2015-05-23 03:36:00	2013-01-26 12:31:08		NULL			0	NULL			0	0	0
492571	zoe_example	Zoë	Exämple	zoe.example@example.org		0	1	0	2015-05-28 04:21:48	2013-02-12 01:55:00		NULL			0	NULL			0	0	0
799796	li_shili	示例	李	li.shili@example.org		0	1	0	2015-05-25 15:22:00	2013-02-27 22:34:24		NULL			0	NULL			0	0	0
825951	bruno_p	Bruno	Placeholder	bruno.p@example.org		0	1	0	2015-05-21 05:40:57	2013-03-15 13:53:14		NULL			0	NULL			0	0	0
3955241	nguyen_mau	Mẫu	Nguyễn	nguyen.mau@example.org		0	1	0	2015-05-21 11:56:24	2014-02-14 09:22:34		NULL			0	NULL			0	0	0
4025493	xavier_essai	Xavier	Essai	xavier.essai@example.org		0	1	0	2015-05-28 11:54:21	2014-03-02 16:50:27		NULL			0	NULL			0	0	0
4032940	yara_a	Yara	Amostra	yara.a@example.org		0	1	0	2015-05-27 15:57:38	2014-03-19 07:06:39		NULL			0	NULL			0	0	0
4136088	siobhan_os	Siobhán	O'Sample	siobhan.os@example.org		0	1	0	2015-05-26 00:44:54	2014-04-03 17:36:52		NULL			0	NULL			0	0	0
4224708	zane_trial	Zane	Trial	zane.trial@example.org		0	1	0	2015-06-03 00:51:36	2014-04-20 05:02:06		NULL			0	NULL			0	0	0
8337498	omar_mithal	Omar	Mithal	omar.mithal@example.org		0	1	0	2015-05-30 03:25:02	2014-12-16 03:15:42		NULL			0	NULL			0	0	0
8651549	paula_ex	Paula	Exemplar	paula.ex@example.org		0	1	0	2015-06-01 23:47:57	2015-01-01 04:16:58		NULL			0	NULL			0	0	0
8834816	raj_u	Raj	Udaharan	raj.u@example.org		0	1	0	2015-05-31 08:02:01	2015-01-16 11:11:52		NULL			0	NULL			0	0	0
8841593	sara_esempio	Sara	Esempio	sara.esempio@example.org		0	1	0	2015-05-22 03:33:31	2015-02-02 00:07:13		NULL			0	NULL			0	0	0
9008120	tom_proto	Tom	Prototype	tom.proto@example.org		0	1	0	2015-05-25 21:49:43	2015-02-17 16:31:21		NULL			0	NULL			0	0	0
9228039	ula_ornek	Ula	Örnek	ula.ornek@example.org		0	1	0	2015-05-20 12:30:25	2015-03-05 17:36:38		NULL			0	NULL			0	0	0
