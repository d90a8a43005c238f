"""The pure core: address matching, rosters, policy and deadlines, the SMS grammar.

Takes plain data and an explicit `now`; imports the standard library,
python-dateutil and nothing of `app` or `sms`.
"""
