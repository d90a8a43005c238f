"""The pure core: address matching, rosters, policy and deadlines, the case lifecycle,
the delivery rules, the SMS grammar.

Takes plain data and an explicit `now`, does no I/O. Imports the standard
library and these libraries only: python-dateutil (recurrence), rapidfuzz
(fuzzy matching), pypinyin (pinyin), shapely (grid boundaries) and
chinese-calendar (working days); nothing of `app` or `sms`.
"""
