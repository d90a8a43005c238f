"""Deadlines: what happens when nobody acts in time.

Deadline steps are rows fired exactly once by the `scheduler` (leased, one
transaction each); `steps` says what each kind of step does, `ladder` the
rungs beyond the first deadline, `digests` the daily jobs. May import
`app.cases`, `app.directory`, `app.delivery`, `app.models`, `routing`.
"""
