#!/bin/sh
# Bring the schema to the newest revision (PostgreSQL is never migrated implicitly; SQLite
# would be), then hand the process over to the server so it receives the stop signal.
set -eu
python -m facedb migrate
exec python -m facedb serve "$@"
