using CrmEngine.Abstractions.Mail;
using CrmEngine.Mail.Outbox;
using CrmEngine.Mail.Tests.Support;
using Microsoft.Extensions.DependencyInjection;

namespace CrmEngine.Mail.Tests;

/// <summary>The outbox is durable: waiting messages survive a restart; one cut short while sending is sent again.</summary>
public sealed class RestartTests
{
    [Fact]
    public async Task Pending_and_retrying_messages_continue_after_a_restart_and_one_left_in_sending_is_sent_again()
    {
        using var temp = new TempFolder();
        using var smtp = new SmtpServer(Path.Combine(temp.Path, "smtp"));
        var stopped = MailWorld.Settings(temp.Path, smtp, workers: 1);
        stopped["Mail:Enabled"] = "false";
        var ids = new List<string>();
        string interrupted;
        await using (var world = await MailWorld.StartAsync(temp.Path, stopped))
        {
            var customer = await world.CustomerAsync("Restart", "restart@example.com");
            for (var i = 0; i < 5; i++)
            {
                ids.Add((await world.Outbox.EnqueueAsync(new MailRequest { Template = "welcome", CustomerId = customer.Id, IdempotencyKey = "r" + i })).MessageId);
            }

            // As a crash mid-send leaves it: claimed (Sending, attempt counted) with no outcome stored.
            var claimed = await world.Services.GetRequiredService<OutboxStore>().ClaimDueAsync(1);
            interrupted = Assert.Single(claimed).Id;
            Assert.Equal(MailState.Sending, world.Message(interrupted).State);
        }

        await using (var world = await MailWorld.StartAsync(temp.Path, MailWorld.Settings(temp.Path, smtp, workers: 1)))
        {
            foreach (var id in ids)
            {
                await world.WaitForStateAsync(id, MailState.Sent);
            }

            var again = world.Message(interrupted);
            Assert.Equal(1, again.InterruptedAttempts);
            Assert.Equal(2, again.Attempts);
            Assert.Contains(world.Logs.Lines, l => l.Contains("1 message(s) were being sent when the engine last stopped", StringComparison.Ordinal));
        }

        var received = smtp.Received();
        Assert.Equal(5, received.Count);
        Assert.Equal(5, received.Select(m => m.MessageId).Distinct().Count());
    }

    [Fact]
    public async Task A_message_waiting_for_its_retry_is_taken_up_after_a_restart()
    {
        using var temp = new TempFolder();
        using var smtp = new SmtpServer(Path.Combine(temp.Path, "smtp"));
        smtp.Plan("421 4.7.0 Too busy, come back later");
        var slow = MailWorld.Settings(temp.Path, smtp, workers: 1);
        slow["Mail:RetryBaseDelay"] = "00:00:02";
        slow["Mail:RetryMaxDelay"] = "00:00:02";
        string id;
        await using (var world = await MailWorld.StartAsync(temp.Path, slow))
        {
            var customer = await world.CustomerAsync("Retry Later", "later@example.com");
            id = (await world.Outbox.EnqueueAsync(new MailRequest { Template = "welcome", CustomerId = customer.Id, IdempotencyKey = "later" })).MessageId;
            var retrying = await world.WaitForStateAsync(id, MailState.Retrying);
            Assert.Contains("421", retrying.LastError, StringComparison.Ordinal);
        }

        await using (var world = await MailWorld.StartAsync(temp.Path, MailWorld.Settings(temp.Path, smtp, workers: 1)))
        {
            var sent = await world.WaitForStateAsync(id, MailState.Sent);
            Assert.Equal(2, sent.Attempts);
            Assert.Equal(0, sent.InterruptedAttempts);
        }

        Assert.Single(smtp.Received());
    }
}
