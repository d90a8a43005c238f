"""The office API (`/api/v1`): bearer API keys, one visibility rule, JSON.

May import app services (cases, directory, offices, apikeys) and models;
nothing in `app` outside this package imports it except `app.web` (`app.api.mount`).
"""
