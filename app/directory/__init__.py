"""Directory: who and where — regions, members, rosters, offices, API keys.

Read-side lookups the other packages share (`lookups`, `rosters`), the one
visibility rule of offices (`offices`) and the offices' API keys
(`apikeys`). May import `app.models`, `app.db`, `routing`, `sms`.
"""
