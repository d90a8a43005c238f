"""The edge to SMS gateways: phone numbers, signatures, gateways, and SMS texts.

Imports the standard library, `phonenumbers`, `twilio` and twilio's own
transport (`requests`, `urllib3`, for translating its errors) only: never
`app` or `routing`.
"""
