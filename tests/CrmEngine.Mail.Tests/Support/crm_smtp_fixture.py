"""A handler for Debian's aiosmtpd used by the mail tests (loaded with -c crm_smtp_fixture.Handler MAILDIR PLAN).

Every accepted message is stored in the maildir MAILDIR, with X-Peer (the client's address and port, so a test can
count SMTP connections) and X-RcptTo headers in front. The optional file PLAN scripts the replies to DATA: one line
per message, consumed from the top: "ok" (or an empty file) accepts, anything else (for example "451 4.3.0 try later"
or "550 5.1.1 no such user") is sent back as the reply and the message is not stored.
"""
import mailbox
import os


class Handler:
    def __init__(self, maildir, plan):
        self.mailbox = mailbox.Maildir(maildir, create=True)
        self.plan = plan

    @classmethod
    def from_cli(cls, parser, *args):
        if len(args) != 2:
            parser.error("crm_smtp_fixture.Handler takes MAILDIR PLAN")
        return cls(*args)

    def next_reply(self):
        try:
            with open(self.plan, encoding="utf-8") as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            return None
        if not lines:
            return None
        first, rest = lines[0].strip(), lines[1:]
        tmp = self.plan + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write("".join(line + "\n" for line in rest))
        os.replace(tmp, self.plan)
        return None if first in ("", "ok") else first

    async def handle_DATA(self, server, session, envelope):
        reply = self.next_reply()
        if reply:
            return reply
        head = "X-Peer: %s:%s\r\nX-RcptTo: %s\r\n" % (session.peer[0], session.peer[1], ", ".join(envelope.rcpt_tos))
        self.mailbox.add(head.encode("ascii") + envelope.original_content)
        return "250 2.0.0 OK stored"
