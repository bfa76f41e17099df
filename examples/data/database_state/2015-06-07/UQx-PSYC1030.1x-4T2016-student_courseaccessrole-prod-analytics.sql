org	course_id	user_id	role
UQx	course-v1:UQx+PSYC1030.1x+4T2016	440076	instructor
UQx	course-v1:UQx+PSYC1030.1x+4T2016	440076	staff
UQx	course-v1:UQx+PSYC1030.1x+4T2016	3592015	beta_testers
