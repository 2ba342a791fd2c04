using CrmEngine.Abstractions.Mail;
using CrmEngine.DataExchange;
using CrmEngine.DataExchange.Customers;
using CrmEngine.Mail.Tests.Support;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace CrmEngine.Mail.Tests;

/// <summary>GDPR erase (the real CustomerEraser) stops mail to the person; campaigns enqueue in batches.</summary>
public sealed class EraseAndBatchTests
{
    private static Action<IServiceCollection> WithDataExchange(Dictionary<string, string?> settings) =>
        s => s.AddCrmDataExchange(new ConfigurationBuilder().AddInMemoryCollection(settings).Build());

    [Fact]
    public async Task Mail_to_an_erased_customer_is_suppressed_before_and_after_enqueue_and_its_data_leaves_the_outbox()
    {
        using var temp = new TempFolder();
        var settings = MailWorld.Settings(temp.Path, smtp: null);
        settings["Mail:Enabled"] = "false"; // messages wait, as they would behind a slow server
        string waiting, sent;
        string customerId;
        await using (var world = await MailWorld.StartAsync(temp.Path, settings, WithDataExchange(settings)))
        {
            var customer = await world.CustomerAsync("Erika Mustermann", "erika@example.com");
            customerId = customer.Id;
            await world.ConsentAsync(customer.Id, "newsletter", granted: true);
            waiting = (await world.Outbox.EnqueueAsync(new MailRequest { Template = "welcome", CustomerId = customer.Id, IdempotencyKey = "before-erase" })).MessageId;
            Assert.Contains("Erika Mustermann", world.Message(waiting).Snapshot, StringComparison.Ordinal);

            await world.Services.GetRequiredService<CustomerEraser>().EraseAsync(customer.Id, "GDPR request 42", "dpo");

            // After the erase: refused at enqueue, for any kind, even with an address given by the caller.
            foreach (var request in new[]
                     {
                         new MailRequest { Template = "welcome", CustomerId = customer.Id, IdempotencyKey = "after-1" },
                         new MailRequest { Template = "welcome", CustomerId = customer.Id, To = "erika@example.com", IdempotencyKey = "after-2" },
                         new MailRequest
                         {
                             Template = "campaign", CustomerId = customer.Id, Kind = MailKind.Marketing, Purpose = "newsletter", IdempotencyKey = "after-3",
                             Model = new Dictionary<string, object?> { ["campaign"] = new Dictionary<string, object?> { ["name"] = "x" } },
                         },
                     })
            {
                var result = await world.Outbox.EnqueueAsync(request);
                Assert.Equal(MailState.Suppressed, result.State);
                Assert.Contains("erased", result.Reason, StringComparison.Ordinal);
            }
        }

        // The sender starts: the message enqueued before the erase is not sent; it is suppressed and scrubbed.
        settings["Mail:Enabled"] = "true";
        await using (var world = await MailWorld.StartAsync(temp.Path, settings, WithDataExchange(settings)))
        {
            var other = await world.CustomerAsync("Still Here", "here@example.com");
            sent = (await world.Outbox.EnqueueAsync(new MailRequest { Template = "welcome", CustomerId = other.Id, IdempotencyKey = "other" })).MessageId;
            await world.WaitForStateAsync(sent, MailState.Sent);

            var dropped = await world.WaitForStateAsync(waiting, MailState.Suppressed);
            Assert.Contains("erased", dropped.LastError, StringComparison.Ordinal);
            Assert.DoesNotContain("Erika", dropped.Snapshot, StringComparison.Ordinal);
            Assert.DoesNotContain("erika@example.com", dropped.To, StringComparison.Ordinal);
            var files = Directory.GetFiles(world.PickupFolder, "*.eml");
            Assert.Equal(sent + ".eml", Path.GetFileName(Assert.Single(files)));
            Assert.DoesNotContain("Erika", await File.ReadAllTextAsync(files[0]), StringComparison.Ordinal);

            // An erase after mail went out: the operator call (or the eraser) scrubs what the outbox kept of the person.
            var forgotten = await world.Admin.ForgetCustomerAsync(other.Id);
            Assert.Null(forgotten.Error);
            var scrubbed = world.Message(sent);
            Assert.Equal(MailState.Sent, scrubbed.State);
            Assert.DoesNotContain("here@example.com", scrubbed.To, StringComparison.Ordinal);
            Assert.DoesNotContain("Still Here", scrubbed.Snapshot, StringComparison.Ordinal);
            Assert.Equal(customerId, world.Message(waiting).CustomerId);
        }
    }

    [Fact]
    public async Task A_batch_enqueue_stores_every_message_once_and_a_bad_request_refuses_the_whole_batch()
    {
        using var temp = new TempFolder();
        await using var world = await MailWorld.StartAsync(temp.Path, MailWorld.Settings(temp.Path, smtp: null));
        var customers = new List<string>();
        for (var i = 0; i < 7; i++)
        {
            customers.Add((await world.CustomerAsync($"Kunde {i} 张", $"k{i}@example.com")).Id);
        }

        var known = await world.Outbox.EnqueueAsync(new MailRequest { Template = "welcome", CustomerId = customers[0], IdempotencyKey = "batch:0" });

        // A bad request (unknown template) anywhere refuses the call naming its position; nothing of it is stored.
        var bad = customers.Select((c, i) => new MailRequest { Template = i == 5 ? "nope" : "welcome", CustomerId = c, IdempotencyKey = "bad:" + i }).ToList();
        var ex = await Assert.ThrowsAsync<ArgumentException>(() => world.Outbox.EnqueueManyAsync(bad));
        Assert.Contains("requests[5]", ex.Message, StringComparison.Ordinal);
        Assert.Contains("Template", ex.Message, StringComparison.Ordinal);
        Assert.Single((IReadOnlyList<MailMessageInfo>)world.Admin.List(null, null, null).Body!);

        // Keys seen before, and the same key twice in one batch, are duplicates of the first message.
        var requests = customers.Select((c, i) => new MailRequest { Template = "welcome", CustomerId = c, IdempotencyKey = "batch:" + i }).ToList();
        requests.Add(new MailRequest { Template = "welcome", CustomerId = customers[3], IdempotencyKey = "batch:3" });
        var results = await world.Outbox.EnqueueManyAsync(requests);
        Assert.Equal(8, results.Count);
        Assert.True(results[0].Duplicate);
        Assert.Equal(known.MessageId, results[0].MessageId);
        Assert.True(results[7].Duplicate);
        Assert.Equal(results[3].MessageId, results[7].MessageId);
        Assert.Equal(6, results.Count(r => !r.Duplicate && r.State == MailState.Pending));

        foreach (var r in results)
        {
            await world.WaitForStateAsync(r.MessageId, MailState.Sent);
        }

        Assert.Equal(7, Directory.GetFiles(world.PickupFolder, "*.eml").Length);
    }
}
