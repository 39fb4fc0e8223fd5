"""End-to-end SIP test harness: Debian's baresip as a scripted caller, sipp for PAI.

Everything binds to 127.0.0.1 only; every port is picked free per test.
"""
