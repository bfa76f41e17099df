"""Optimus Ingestor configuration: copy to config.py and edit.

Every setting has a default (shown here). Each can also be set by an environment variable
INGESTOR_<KEY> (lists separated by ':'), or by `ingestor.py --set KEY=VALUE`; later sources win:
defaults < this file < environment < command line. Relative paths are taken from the directory of
ingestor.py. No credentials belong in the repository: keep config.py out of it (it is ignored).
"""

# Data roots. Each holds clickstream_logs/latest and database_state/latest, links to dated dirs.
DATA_PATHS = ["examples/data"]

# Where a symbolic link in the data (a `latest` link, a delivered file) may lead. A link out of
# these directories is refused (a scan problem, never read). Empty: the DATA_PATHS.
ALLOWED_ROOTS: list[str] = []

# Where the embedded databases, logs, pid file, rejects, output (www/) and exports live.
STATE_DIR = "var"

# SQL store: "sqlite" (one file per database under STATE_DIR/sql/) or
# "mysql://user:password@host:port" (MySQL 5.7+/MariaDB 10.6+, through pymysql; the server must
# allow LOAD DATA LOCAL INFILE: local_infile=1).
SQL_URL = "sqlite"

# Document store: "sqlite" (one file per database under STATE_DIR/documents/) or
# "mongodb://host:port/" (MongoDB 4.4+ through pymongo; FerretDB 1.24 is what the tests use).
MONGO_URL = "sqlite"

# The tracking database (the dashboards read api.ingestor; change only for tests).
TRACKING_DATABASE = "api"

# Prepended to the document databases' names (logs, discussion_forum); empty in production.
DOCUMENT_DB_PREFIX = ""

# A MaxMind GeoIP2/GeoLite2 Country or City database (.mmdb) for the events' `country` (and the
# Australian `subdivision` with a City database). Empty: no country lookup (ingestion still works).
GEOIP_DATABASE = ""

# Hold back the newest-dated tracking log of the directory while it may still be growing.
CLICKSTREAM_HOLD_NEWEST = True

# Events written to the document store per batch.
CLICKSTREAM_BATCH = 20000

# The longest line (in bytes, once decompressed) of a tracking log or forum dump; a longer line is
# rejected as too long without being held in memory. edX's own cut-offs are 2,043 / 10,000 / 50,000
# characters; a MongoDB document cannot exceed 16 MB.
MAX_LINE_BYTES = 8388608

# CSV exports of each person-course and course-profile table kept in STATE_DIR/exports/ (the
# newest ones; older exports of the same table are removed after each PersonCourse run).
PERSON_COURSE_EXPORTS_KEEP = 7

# The course registry (EDX_DATABASES). Re-read when it changes and on SIGHUP. Set to a file that
# does not exist, it is a configuration error (the default missing is only a warning).
COURSES_FILE = "courses.py"

# Seconds between two scans of the data roots.
SCAN_INTERVAL = 300

# Services to run (empty: every service found in services/) and services to leave out.
SERVICES: list[str] = []
IGNORE_SERVICES: list[str] = []

# The status API (a thread of the daemon while `run`/`start` is up).
API_ENABLED = True
API_HOST = "127.0.0.1"
API_PORT = 8850
API_TOKEN = ""  # needed by write endpoints (none yet)

# True: store the dump tables as the original did (text columns except id and the datetime
# columns, and NULL kept as the text 'NULL'), so that dashboards written against it work unchanged.
# False (default): typed columns inferred from the data and real SQL NULLs.
LEGACY_SCHEMA = False

# DatabaseState: the longest record of a .sql dump, in bytes (a record may span lines, each ending
# in a backslash). A longer record is rejected with its line number, the rest of the file loads.
DUMP_MAX_RECORD_BYTES = 128 * 1024 * 1024

# The queue: attempts before a file is failed, the lease of a running file and how often it is
# renewed, and the first retry delay after a transient error (doubled at each attempt).
MAX_ATTEMPTS = 3
LEASE_SECONDS = 120
HEARTBEAT_SECONDS = 10
RETRY_BACKOFF_SECONDS = 30

# The host part of this daemon's worker id (default: the host name).
WORKER_NAME = ""

# Encrypted deliveries (the Deliveries service). Directories where edX's deliveries land (for
# example the target of your `aws s3 sync`), scanned recursively; empty: the service is idle.
INCOMING_PATHS: list[str] = []
# The data root deliveries are laid out in (database_state/<date>/, clickstream_logs/latest/);
# empty: the first of DATA_PATHS.
DELIVERIES_TARGET = ""
# The GnuPG home holding the university's secret key (empty: gpg's default, ~/.gnupg), and a file
# holding its passphrase if it has one. Never put the passphrase itself in this file.
GNUPG_HOME = ""
GNUPG_PASSPHRASE_FILE = ""
# Keep the encrypted originals after publication (False: removed at the next scan once the whole
# delivery is published without failures).
DELIVERIES_KEEP_ORIGINALS = True
# At most this many bytes written per delivery (0: only the disk's free space limits it).
DELIVERIES_SPACE_LIMIT = 0

# Deployment with `fab prepare deploy` (fabfile.py; read from the developer's config.py, as in the
# original). The hosts, the git URL they fetch from and where the releases live on them:
FAB_HOSTS: list[str] = []  # e.g. ["deploy@ingest1.example.org", "deploy@ingest2.example.org:2222"]
FAB_GITHUB_URL = ""  # e.g. "https://github.com/your-org/optimus-ingestor.git"
FAB_REMOTE_PATH = "/opt/optimus-ingestor"
# Optional (defaults shown): the daemon's user, the host's config file and state directory, the
# Python that makes the venvs and pip's options (a --find-links wheel directory, or nothing for
# PyPI), "systemd", "init" or "auto", where the init script and its defaults file go, the health
# check that decides whether to roll back, whether to build native/eventscan into the venv where
# the host has cargo 1.78+ ("auto"; "no" never), and cargo's build directory ("": under
# FAB_REMOTE_PATH). With FAB_PIP_OPTIONS' --no-index, the wheel directory needs maturin too.
# FAB_USER = "ingestor"
# FAB_CONFIG = "/etc/optimus-ingestor/config.py"
# FAB_STATE_DIR = "/var/lib/optimus-ingestor"
# FAB_PYTHON = "python3"
# FAB_PIP_OPTIONS = ""
# FAB_SERVICE = "auto"
# FAB_INIT_DIR = "/etc/init.d"
# FAB_DEFAULTS_FILE = "/etc/default/optimus-ingestor"
# FAB_HEALTH_URL = "http://127.0.0.1:8850/healthz"
# FAB_HEALTH_TIMEOUT = 60
# FAB_KEEP_RELEASES = 5
# FAB_NATIVE = "auto"
# FAB_CARGO_TARGET_DIR = ""
