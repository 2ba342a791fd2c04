using System.Collections.Concurrent;
using CrmEngine.Abstractions.Mail;
using CrmEngine.Abstractions.Store;
using CrmEngine.Core.Pipeline;
using CrmEngine.Rules.Events;

namespace CrmEngine.Rules.Tests;

/// <summary>
/// <c>api.sendMail</c> in event rules. The outbox here keeps requests by idempotency key as the real one does (the real
/// outbox, its sender and the pickup folder are exercised end to end by the host test MailHostTests).
/// </summary>
public sealed class SendMailRuleTests
{
    private sealed class KeyedOutbox : IMailOutbox
    {
        public ConcurrentDictionary<string, MailRequest> ByKey { get; } = new(StringComparer.Ordinal);
        public int Calls;

        public Task<MailEnqueueResult> EnqueueAsync(MailRequest request, CancellationToken cancellationToken = default)
        {
            Interlocked.Increment(ref Calls);
            var duplicate = !ByKey.TryAdd(request.IdempotencyKey, request);
            return Task.FromResult(new MailEnqueueResult(request.IdempotencyKey, MailState.Pending, duplicate, null));
        }
    }

    private static EventRules Start(TestWorld world, IMailOutbox outbox)
    {
        world.Catalog.Reload();
        var rules = new EventRules(world.Engine, world.Catalog, world.Registry, world.Provider, world.Time, mailOutbox: () => outbox);
        rules.Start();
        return rules;
    }

    [Fact]
    public async Task An_async_rule_enqueues_mail_with_a_key_per_rule_record_and_version()
    {
        using var world = new TestWorld();
        world.WriteRule("events", "welcome-mail", """
            // @entity customer
            // @stage async
            if (event.operation === 'create') api.sendMail({ template: 'welcome' });
            if (event.operation === 'update' && record.tags.includes('vip'))
              api.sendMail({ template: 'campaign', kind: 'marketing', purpose: 'vip-news', key: 'vip:' + record.id,
                             culture: 'de-DE', model: { campaign: { name: 'VIP', offers: [ { title: 'Tee', price: 9.5 } ] } } });
            """);
        var outbox = new KeyedOutbox();
        using var rules = Start(world, outbox);
        using var dispatcher = new AsyncDeliveryDispatcher(world.Pipeline);
        await dispatcher.StartAsync(CancellationToken.None);
        try
        {
            var customer = await world.AddCustomerAsync("Acme", c => c.Emails = ["info@acme.example"]);
            await SegmentTests.WaitFor(() => Task.FromResult(!outbox.ByKey.IsEmpty));
            var welcome = Assert.Single(outbox.ByKey.Values);
            Assert.Equal($"rule:welcome-mail:welcome:customer:{customer.Id}:v1", welcome.IdempotencyKey);
            Assert.Equal("welcome", welcome.Template);
            Assert.Equal(customer.Id, welcome.CustomerId);
            Assert.Equal(MailKind.Transactional, welcome.Kind);

            customer.Tags = ["vip"];
            customer = await world.Store.Customers.UpdateAsync(customer);
            customer.Name = "Acme AG";
            await world.Store.Customers.UpdateAsync(customer);
            await SegmentTests.WaitFor(() => Task.FromResult(outbox.Calls >= 3));

            // Two updates with the tag, one explicit key: one marketing message.
            Assert.Equal(2, outbox.ByKey.Count);
            var vip = outbox.ByKey["vip:" + customer.Id];
            Assert.Equal(MailKind.Marketing, vip.Kind);
            Assert.Equal("vip-news", vip.Purpose);
            Assert.Equal("de-DE", vip.Culture);
            var campaign = Assert.IsAssignableFrom<IReadOnlyDictionary<string, object?>>(vip.Model["campaign"]);
            Assert.Equal("VIP", campaign["name"]);
        }
        finally
        {
            await dispatcher.StopAsync(CancellationToken.None);
        }
    }

    [Fact]
    public async Task Send_mail_is_not_available_in_synchronous_stages()
    {
        using var world = new TestWorld();
        world.WriteRule("events", "too-early", "// @entity customer\n// @stage post\napi.sendMail({ template: 'welcome' });");
        var outbox = new KeyedOutbox();
        using var rules = Start(world, outbox);

        var ex = await Assert.ThrowsAnyAsync<StoreException>(() => world.AddCustomerAsync("Acme"));
        Assert.Contains("too-early", ex.Message, StringComparison.Ordinal);
        Assert.Contains("sendMail", ex.Message, StringComparison.Ordinal);
        Assert.Equal(0, outbox.Calls);
        Assert.Equal(0, await world.Store.Customers.CountAsync());
    }

    [Fact]
    public async Task A_bad_send_mail_call_fails_the_run_naming_the_rule_and_the_problem()
    {
        using var world = new TestWorld();
        world.WriteRule("events", "bad-kind", "// @entity customer\n// @stage async\napi.sendMail({ template: 'welcome', kind: 'spam' });");
        var outbox = new KeyedOutbox();
        using var rules = Start(world, outbox);
        using var dispatcher = new AsyncDeliveryDispatcher(world.Pipeline);
        await dispatcher.StartAsync(CancellationToken.None);
        try
        {
            await world.AddCustomerAsync("Acme");
            await SegmentTests.WaitFor(() => Task.FromResult(rules.Status().Single().Failures > 0));
            var status = rules.Status().Single();
            Assert.Contains("kind must be 'transactional' or 'marketing'", status.LastError, StringComparison.Ordinal);
            Assert.Equal(0, outbox.Calls);
        }
        finally
        {
            await dispatcher.StopAsync(CancellationToken.None);
        }
    }
}
