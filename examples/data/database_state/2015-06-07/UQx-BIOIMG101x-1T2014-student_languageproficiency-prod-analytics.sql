id	user_profile_id	code
300	445801	en
301	491569	fr
302	798793	zh
303	824947	en
