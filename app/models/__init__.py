"""The database schema, as typed SQLAlchemy 2 models, one module per part of the domain.

`base` holds the declarative base; `schema` imports every module so that the
metadata holds every table (Alembic, the tests' table list). Each module
imports only `base` and the model modules its relationships name.
May import nothing of `app` but `app.models`.
"""
