using CrmEngine.Abstractions.Mail;
using CrmEngine.Abstractions.Model;
using CrmEngine.Mail.Tests.Support;
using MimeKit;

namespace CrmEngine.Mail.Tests;

/// <summary>Messages through the outbox to a real SMTP server (aiosmtpd on loopback), read back with MimeKit.</summary>
public sealed class SendingTests
{
    private static MailRequest Welcome(string customerId, string key) => new() { Template = "welcome", CustomerId = customerId, IdempotencyKey = key };

    private static MailRequest Campaign(string customerId, string key, string purpose = "newsletter") => new()
    {
        Template = "campaign",
        CustomerId = customerId,
        Kind = MailKind.Marketing,
        Purpose = purpose,
        IdempotencyKey = key,
        Model = new Dictionary<string, object?>
        {
            ["campaign"] = new Dictionary<string, object?>
            {
                ["name"] = "Spring",
                ["subject"] = "Frühlingsangebote für Sie – 春季优惠",
                ["headline"] = "Spring offers",
                ["offers"] = new[] { new Dictionary<string, object?> { ["title"] = "Tea set", ["price"] = 19.90m, ["currency"] = "EUR" } },
            },
        },
    };

    [Fact]
    public async Task A_transactional_message_arrives_with_encoded_names_both_bodies_and_its_stable_message_id()
    {
        using var temp = new TempFolder();
        using var smtp = new SmtpServer(Path.Combine(temp.Path, "smtp"));
        await using var world = await MailWorld.StartAsync(temp.Path, MailWorld.Settings(temp.Path, smtp));
        var customer = await world.CustomerAsync("王小明", "xiaoming@example.com", c => c.Owner = "Zoë Ødegård");

        var result = await world.Outbox.EnqueueAsync(Welcome(customer.Id, "welcome:" + customer.Id));
        Assert.Equal(MailState.Pending, result.State);
        Assert.False(result.Duplicate);
        var sent = await world.WaitForStateAsync(result.MessageId, MailState.Sent);

        var message = Assert.Single(smtp.Received());
        var to = Assert.IsType<MailboxAddress>(Assert.Single(message.To));
        Assert.Equal("王小明", to.Name);
        Assert.Equal("xiaoming@example.com", to.Address);
        var from = Assert.IsType<MailboxAddress>(Assert.Single(message.From));
        Assert.Equal("Müller & Söhne CRM", from.Name);
        Assert.Equal("crm@example.com", from.Address);
        Assert.Contains("王小明", message.Subject, StringComparison.Ordinal);
        Assert.Equal(sent.MessageId, message.MessageId);
        Assert.EndsWith("@example.com", message.MessageId, StringComparison.Ordinal);
        Assert.Equal("xiaoming@example.com", message.Headers["X-RcptTo"]);

        // multipart/alternative with a text and an HTML part, customer data in both.
        var alternative = Assert.IsType<MultipartAlternative>(message.Body);
        Assert.Equal(2, alternative.Count);
        Assert.Contains("Zoë Ødegård", message.TextBody, StringComparison.Ordinal);
        Assert.Contains("Zoë Ødegård", message.HtmlBody, StringComparison.Ordinal);
        Assert.Contains("<html", message.HtmlBody, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("<p>", message.TextBody, StringComparison.Ordinal);
        Assert.Null(message.Headers["List-Unsubscribe"]);

        // On the wire the non-ASCII display names and subject are RFC 2047 encoded (the server offers no SMTPUTF8).
        var raw = Assert.Single(smtp.ReceivedRaw());
        var headerBlock = raw[..raw.IndexOf("\r\n\r\n", StringComparison.Ordinal)];
        Assert.True(headerBlock.All(ch => ch < 128), "headers are 7-bit on the wire");
        Assert.Contains("=?utf-8?", headerBlock, StringComparison.OrdinalIgnoreCase);

        Assert.Equal(1, sent.Attempts);
        Assert.Contains("OK stored", sent.ServerReply, StringComparison.Ordinal);
        Assert.NotNull(sent.SentAt);
    }

    [Fact]
    public async Task A_marketing_message_carries_the_one_click_unsubscribe_headers_and_link()
    {
        using var temp = new TempFolder();
        using var smtp = new SmtpServer(Path.Combine(temp.Path, "smtp"));
        await using var world = await MailWorld.StartAsync(temp.Path, MailWorld.Settings(temp.Path, smtp));
        var customer = await world.CustomerAsync("Åsa Lindqvist", "asa@example.com");
        await world.ConsentAsync(customer.Id, "newsletter", granted: true);

        var result = await world.Outbox.EnqueueAsync(Campaign(customer.Id, "spring:" + customer.Id));
        await world.WaitForStateAsync(result.MessageId, MailState.Sent);

        var message = Assert.Single(smtp.Received());
        Assert.Equal("Frühlingsangebote für Sie – 春季优惠", message.Subject);
        var header = message.Headers["List-Unsubscribe"];
        Assert.NotNull(header);
        Assert.StartsWith("<https://crm.example.com/unsubscribe?token=", header, StringComparison.Ordinal);
        Assert.EndsWith(">", header, StringComparison.Ordinal);
        Assert.Equal("List-Unsubscribe=One-Click", message.Headers["List-Unsubscribe-Post"]);

        var link = header.Trim('<', '>');
        Assert.Contains(link, message.TextBody, StringComparison.Ordinal);
        Assert.Contains(link.Replace("&", "&amp;", StringComparison.Ordinal), message.HtmlBody, StringComparison.Ordinal);
        Assert.Contains("Tea set", message.TextBody, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_same_key_enqueued_twice_or_concurrently_sends_once()
    {
        using var temp = new TempFolder();
        using var smtp = new SmtpServer(Path.Combine(temp.Path, "smtp"));
        await using var world = await MailWorld.StartAsync(temp.Path, MailWorld.Settings(temp.Path, smtp));
        var customer = await world.CustomerAsync("Ana Souza", "ana@example.com");

        var first = await world.Outbox.EnqueueAsync(Welcome(customer.Id, "welcome:" + customer.Id));
        var again = await world.Outbox.EnqueueAsync(Welcome(customer.Id, "welcome:" + customer.Id));
        Assert.True(again.Duplicate);
        Assert.Equal(first.MessageId, again.MessageId);

        var concurrent = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(() => world.Outbox.EnqueueAsync(Welcome(customer.Id, "burst")))));
        Assert.Single(concurrent.Select(r => r.MessageId).Distinct());
        Assert.Equal(7, concurrent.Count(r => r.Duplicate));

        await world.WaitForStateAsync(first.MessageId, MailState.Sent);
        await world.WaitForStateAsync(concurrent[0].MessageId, MailState.Sent);
        Assert.Equal(2, smtp.Received().Count);
        Assert.Equal(2, ((IReadOnlyList<MailMessageInfo>)world.Admin.List(null, null, null).Body!).Count);
    }

    [Fact]
    public async Task A_4xx_reply_is_retried_with_backoff_and_then_sent_once()
    {
        using var temp = new TempFolder();
        using var smtp = new SmtpServer(Path.Combine(temp.Path, "smtp"));
        smtp.Plan("451 4.3.0 Mailbox busy, try later", "452 4.3.1 Insufficient storage");
        var settings = MailWorld.Settings(temp.Path, smtp, workers: 1);
        // Long enough that the Retrying state is seen between attempts on a loaded machine.
        settings["Mail:RetryBaseDelay"] = "00:00:01.500";
        settings["Mail:RetryMaxDelay"] = "00:00:03";
        await using var world = await MailWorld.StartAsync(temp.Path, settings);
        var customer = await world.CustomerAsync("Jean Dupont", "jean@example.com");

        var result = await world.Outbox.EnqueueAsync(Welcome(customer.Id, "w1"));
        var retrying = await world.WaitForStateAsync(result.MessageId, MailState.Retrying);
        Assert.Contains("451", retrying.LastError, StringComparison.Ordinal);
        Assert.NotNull(retrying.NextAttemptAt);

        var sent = await world.WaitForStateAsync(result.MessageId, MailState.Sent);
        Assert.Equal(3, sent.Attempts);
        var message = Assert.Single(smtp.Received());
        Assert.Equal(sent.MessageId, message.MessageId);
    }

    [Fact]
    public async Task A_5xx_reply_fails_for_good_with_the_server_reply_recorded_and_retry_sends_it()
    {
        using var temp = new TempFolder();
        using var smtp = new SmtpServer(Path.Combine(temp.Path, "smtp"));
        smtp.Plan("550 5.1.1 No such user here");
        await using var world = await MailWorld.StartAsync(temp.Path, MailWorld.Settings(temp.Path, smtp, workers: 1));
        var customer = await world.CustomerAsync("Nobody", "nobody@example.com");

        var result = await world.Outbox.EnqueueAsync(Welcome(customer.Id, "w1"));
        var failed = await world.WaitForStateAsync(result.MessageId, MailState.Failed);
        Assert.Contains("550", failed.LastError, StringComparison.Ordinal);
        Assert.Contains("No such user here", failed.LastError, StringComparison.Ordinal);
        Assert.Equal(1, failed.Attempts);
        Assert.Null(failed.NextAttemptAt);
        Assert.Empty(smtp.Received());

        // A message sent after it is not held back, and the failed one stays failed until an operator retries it.
        var other = await world.Outbox.EnqueueAsync(Welcome(customer.Id, "w2"));
        await world.WaitForStateAsync(other.MessageId, MailState.Sent);
        Assert.Equal(MailState.Failed, world.Message(result.MessageId).State);

        var retried = await world.Admin.RetryAsync(result.MessageId);
        Assert.Null(retried.Error);
        await world.WaitForStateAsync(result.MessageId, MailState.Sent);
        Assert.Equal(2, smtp.Received().Count);
        Assert.Equal(409, (await world.Admin.RetryAsync(result.MessageId)).Status);
        Assert.Equal(404, (await world.Admin.RetryAsync("nope")).Status);
    }

    [Fact]
    public async Task A_server_that_is_down_gets_the_message_once_it_is_back()
    {
        using var temp = new TempFolder();
        using var smtp = new SmtpServer(Path.Combine(temp.Path, "smtp"));
        smtp.Stop();
        await using var world = await MailWorld.StartAsync(temp.Path, MailWorld.Settings(temp.Path, smtp, workers: 1));
        var customer = await world.CustomerAsync("Kim Lee", "kim@example.com");

        var result = await world.Outbox.EnqueueAsync(Welcome(customer.Id, "w1"));
        var retrying = await world.WaitForStateAsync(result.MessageId, MailState.Retrying);
        Assert.Contains($"127.0.0.1:{smtp.Port}", retrying.LastError, StringComparison.Ordinal);

        smtp.Start();
        var sent = await world.WaitForStateAsync(result.MessageId, MailState.Sent);
        Assert.True(sent.Attempts >= 2);
        Assert.Single(smtp.Received());
    }

    [Fact]
    public async Task Workers_reuse_their_connection_across_messages()
    {
        using var temp = new TempFolder();
        using var smtp = new SmtpServer(Path.Combine(temp.Path, "smtp"));
        await using var world = await MailWorld.StartAsync(temp.Path, MailWorld.Settings(temp.Path, smtp, workers: 2));
        var customer = await world.CustomerAsync("Reuse", "reuse@example.com");

        var ids = new List<string>();
        for (var i = 0; i < 30; i++)
        {
            ids.Add((await world.Outbox.EnqueueAsync(Welcome(customer.Id, "reuse:" + i))).MessageId);
        }

        foreach (var id in ids)
        {
            await world.WaitForStateAsync(id, MailState.Sent);
        }

        var received = smtp.Received();
        Assert.Equal(30, received.Count);
        var connections = received.Select(m => m.Headers["X-Peer"]).Distinct().Count();
        Assert.InRange(connections, 1, 2);
        Assert.Equal(30, received.Select(m => m.MessageId).Distinct().Count());
    }

    [Fact]
    public async Task Without_an_SMTP_host_messages_are_written_to_the_pickup_folder()
    {
        using var temp = new TempFolder();
        await using var world = await MailWorld.StartAsync(temp.Path, MailWorld.Settings(temp.Path, smtp: null));
        var customer = await world.CustomerAsync("José Álvarez", "jose@example.com");

        var result = await world.Outbox.EnqueueAsync(Welcome(customer.Id, "w1"));
        var sent = await world.WaitForStateAsync(result.MessageId, MailState.Sent);

        var file = Path.Combine(world.PickupFolder, result.MessageId + ".eml");
        Assert.True(File.Exists(file), $"{file} exists");
        Assert.Single(Directory.GetFiles(world.PickupFolder));
        Assert.Contains("\r\n\r\n", await File.ReadAllTextAsync(file), StringComparison.Ordinal);
        var message = MimeMessage.Load(file);
        Assert.Equal("José Álvarez", ((MailboxAddress)message.To[0]).Name);
        Assert.Equal(sent.MessageId, message.MessageId);
        Assert.Contains("José", message.TextBody, StringComparison.Ordinal);
        Assert.Contains(file, sent.ServerReply, StringComparison.Ordinal);
    }
}
