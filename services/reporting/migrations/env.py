from alembic import context

from crmhub.runtime.migrate import run_env

run_env(context)
