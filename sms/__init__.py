"""The edge to SMS gateways: phone numbers, signatures, gateways, and SMS texts.

Imports the standard library, `phonenumbers` and `twilio` only: never `app`
or `routing`.
"""
