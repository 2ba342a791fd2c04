"""A real SMTP server with TLS and AUTH for the mail tests, on Debian's aiosmtpd (python3-aiosmtpd).

Usage: python3 crm_smtp_tls.py MODE PORT CERT KEY MAILDIR USER PASSWORD
MODE "starttls": plain connection, STARTTLS required before anything else, AUTH only over TLS.
MODE "implicit": TLS from the first byte (SMTPS), AUTH required.
Every accepted message is stored in the maildir MAILDIR with X-Auth (the login used) in front. Prints "ready" once
listening. The password is compared here and never printed.
"""
import asyncio
import mailbox
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

mode, port, cert, key, maildir, user, password = sys.argv[1:8]
context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
context.load_cert_chain(cert, key)
box = mailbox.Maildir(maildir, create=True)


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = (isinstance(auth_data, LoginPassword)
          and auth_data.login.decode("utf-8") == user
          and auth_data.password.decode("utf-8") == password)
    return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


class Handler:
    async def handle_DATA(self, server, session, envelope):
        login = session.auth_data.login.decode("utf-8") if session.auth_data is not None else "-"
        box.add(("X-Auth: %s\r\n" % login).encode("utf-8") + envelope.original_content)
        return "250 2.0.0 OK stored"


def factory():
    if mode == "starttls":
        return SMTP(Handler(), tls_context=context, require_starttls=True, authenticator=authenticator,
                    auth_required=True, auth_require_tls=True)
    # Implicit TLS: the socket is TLS already; aiosmtpd's own TLS check knows only STARTTLS.
    return SMTP(Handler(), authenticator=authenticator, auth_required=True, auth_require_tls=False)


loop = asyncio.new_event_loop()
asyncio.set_event_loop(loop)
server = loop.run_until_complete(
    loop.create_server(factory, "127.0.0.1", int(port), ssl=context if mode == "implicit" else None))
print("ready", flush=True)
loop.run_forever()
