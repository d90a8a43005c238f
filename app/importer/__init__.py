"""Importer: `gridline import DIR` and the generated cities.

`files` holds each file's rules, `csv_rows` what every CSV file shares
(`file:line: reason` errors, bulk upserts by natural key), `geo` the grids'
boundaries; `demo_city` and `zhoushan_city` write the CSV files of the demo
and of a Zhoushan-sized city. May import `app.models`, `app.directory`,
`app.db`, `routing`, `sms`.
"""
