using CrmEngine.Core;
using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Pipeline;
using CrmEngine.Abstractions.Store;
using CrmEngine.Core.Pipeline;

namespace CrmEngine.Core.Tests;

public class AsyncDeliveryTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    private static async Task<T> Eventually<T>(Func<Task<T>> probe, Func<T, bool> done)
    {
        var until = DateTime.UtcNow + Patience;
        while (true)
        {
            var value = await probe();
            if (done(value) || DateTime.UtcNow > until)
            {
                return value;
            }

            await Task.Delay(20);
        }
    }

    private static PipelineOptions Fast(int attempts = 3) => new()
    {
        AsyncMaxAttempts = attempts,
        AsyncRetryBaseDelay = TimeSpan.FromMilliseconds(5),
        HandlerTimeout = TimeSpan.FromSeconds(5),
    };

    [Fact]
    public async Task A_failing_async_handler_is_retried_then_delivered()
    {
        using var engine = new TestEngine(Fast(attempts: 5));
        using var dispatcher = new AsyncDeliveryDispatcher(engine.Pipeline);
        var calls = 0;
        var delivered = new TaskCompletionSource<WriteEvent<Customer>>();
        using var _ = engine.On<Customer>("erp", PipelineStage.Async, (e, _) =>
        {
            if (Interlocked.Increment(ref calls) < 3)
            {
                throw new HttpRequestException("ERP not reachable");
            }

            delivered.TrySetResult(e);
            return Task.CompletedTask;
        }, name: "erp:Push");
        await dispatcher.StartAsync(CancellationToken.None);

        var c = await engine.Store.Customers.CreateAsync(TestEngine.NewCustomer("Async Co"));
        var e = await delivered.Task.WaitAsync(Patience);

        Assert.Equal(3, calls);
        Assert.Equal(c.Id, e.EntityId);
        Assert.Equal("Async Co", e.After!.Name);
        Assert.Equal(PipelineStage.Async, e.Stage);
        Assert.Equal(1, e.Sequence);
        Assert.Equal("user:alice", e.Actor);
        var left = await Eventually(() => dispatcher.ListAsync(), l => l.Count == 0);
        Assert.Empty(left);
        Assert.Equal(2, engine.Observer.FailedSnapshot().Count(f => f.Handler == "erp:Push"));
        await dispatcher.StopAsync(CancellationToken.None);
    }

    [Fact]
    public async Task A_delivery_whose_owner_is_not_taking_calls_stays_pending_without_a_try_or_a_fault()
    {
        // Many more "unavailable" answers than AsyncMaxAttempts: none of them may park or drop the delivery.
        using var engine = new TestEngine(Fast(attempts: 2));
        using var dispatcher = new AsyncDeliveryDispatcher(engine.Pipeline);
        var unavailable = 0;
        var available = false;
        var delivered = new TaskCompletionSource<string>();
        using var _ = engine.On<Customer>("welcome", PipelineStage.Async, (e, _) =>
        {
            if (!Volatile.Read(ref available))
            {
                Interlocked.Increment(ref unavailable);
                throw new HandlerUnavailableException("plugin 'welcome' is stopping");
            }

            delivered.TrySetResult(e.EntityId);
            return Task.CompletedTask;
        }, name: "welcome:Greet");
        await dispatcher.StartAsync(CancellationToken.None);

        var c = await engine.Store.Customers.CreateAsync(TestEngine.NewCustomer("Kept Co"));
        await Eventually(() => Task.FromResult(Volatile.Read(ref unavailable)), n => n >= 5);

        var pending = Assert.Single(await dispatcher.ListAsync(AsyncDeliveryStatus.Pending));
        Assert.Equal((c.Id, 0), (pending.EntityId, pending.Attempts));
        Assert.Empty(await dispatcher.ListAsync(AsyncDeliveryStatus.Parked));
        Assert.DoesNotContain(engine.Observer.FailedSnapshot(), f => f.Handler == "welcome:Greet");

        Volatile.Write(ref available, true);
        Assert.Equal(c.Id, await delivered.Task.WaitAsync(Patience));
        Assert.Empty(await Eventually(() => dispatcher.ListAsync(), l => l.Count == 0));
        await dispatcher.StopAsync(CancellationToken.None);
    }

    [Fact]
    public async Task An_async_handler_that_keeps_failing_is_parked_with_its_error_and_can_be_retried()
    {
        using var engine = new TestEngine(Fast(attempts: 3));
        using var dispatcher = new AsyncDeliveryDispatcher(engine.Pipeline);
        var calls = 0;
        var fail = true;
        using var _ = engine.On<Customer>("erp", PipelineStage.Async, (_, _) =>
        {
            Interlocked.Increment(ref calls);
            return fail ? throw new InvalidOperationException("ERP rejected the record") : Task.CompletedTask;
        }, name: "erp:Push");
        await dispatcher.StartAsync(CancellationToken.None);

        var c = await engine.Store.Customers.CreateAsync(TestEngine.NewCustomer());
        var parked = await Eventually(() => dispatcher.ListAsync(AsyncDeliveryStatus.Parked), l => l.Count == 1);

        var d = Assert.Single(parked);
        Assert.Equal((c.Id, "erp:Push", "erp", 3), (d.EntityId, d.HandlerName, d.OwnerId, d.Attempts));
        Assert.Contains("ERP rejected the record", d.LastError);
        Assert.Equal(3, calls);
        Assert.Empty(await dispatcher.ListAsync(AsyncDeliveryStatus.Pending));

        fail = false;
        Assert.True(await dispatcher.RetryParkedAsync(d.Id));
        var left = await Eventually(() => dispatcher.ListAsync(), l => l.Count == 0);
        Assert.Empty(left);
        Assert.Equal(4, calls);
        await dispatcher.StopAsync(CancellationToken.None);
    }

    [Fact]
    public async Task Deliveries_survive_reopening_the_database_and_wait_for_their_handler()
    {
        var folder = Path.Combine(Path.GetTempPath(), "crm-core-tests", Guid.NewGuid().ToString("N"));
        try
        {
            string id;
            using (var first = new TestEngine(Fast(), folder))
            {
                // Registered, but no dispatcher runs: the engine "crashes" before delivering.
                using var _ = first.On<Customer>("mailer", PipelineStage.Async, (_, _) => Task.CompletedTask, name: "mailer:Welcome");
                id = (await first.Store.Customers.CreateAsync(TestEngine.NewCustomer("Durable"))).Id;
            }

            using var second = new TestEngine(Fast(), folder);
            using var dispatcher = new AsyncDeliveryDispatcher(second.Pipeline);
            await dispatcher.StartAsync(CancellationToken.None);

            // The handler is not registered yet: the delivery stays pending.
            await dispatcher.DeliverDueAsync(CancellationToken.None);
            var pending = Assert.Single(await dispatcher.ListAsync(AsyncDeliveryStatus.Pending));
            Assert.Equal((id, "mailer:Welcome", 0), (pending.EntityId, pending.HandlerName, pending.Attempts));

            var got = new TaskCompletionSource<WriteEvent<Customer>>();
            using var h = second.On<Customer>("mailer", PipelineStage.Async, (e, _) =>
            {
                got.TrySetResult(e);
                return Task.CompletedTask;
            }, name: "mailer:Welcome");

            var e = await got.Task.WaitAsync(Patience);
            Assert.Equal("Durable", e.After!.Name);
            Assert.Equal(ChangeOperation.Create, e.Operation);
            Assert.Empty(await Eventually(() => dispatcher.ListAsync(), l => l.Count == 0));
            await dispatcher.StopAsync(CancellationToken.None);
        }
        finally
        {
            TestEngine.TryDelete(folder);
        }
    }

    [Fact]
    public async Task Writes_from_async_handlers_record_the_plugin_and_a_hung_one_is_abandoned()
    {
        var options = Fast(attempts: 1);
        options.HandlerTimeout = TimeSpan.FromMilliseconds(300);
        using var engine = new TestEngine(options);
        using var dispatcher = new AsyncDeliveryDispatcher(engine.Pipeline);
        using var writer = engine.On<Customer>("sales", PipelineStage.Async, async (e, ct) =>
        {
            if (e.After!.Name == "hang")
            {
                await Task.Delay(Timeout.Infinite, CancellationToken.None);
            }

            await engine.Store.Activities.CreateAsync(new Activity { CustomerId = e.EntityId, Subject = "follow up" }, ct);
        }, name: "sales:FollowUp");
        await dispatcher.StartAsync(CancellationToken.None);

        var c = await engine.Store.Customers.CreateAsync(TestEngine.NewCustomer("ok"));
        await engine.Store.Customers.CreateAsync(TestEngine.NewCustomer("hang"));

        var activity = await Eventually(() => engine.Store.Activities.FindAsync("customerId", c.Id), l => l.Count == 1);
        var audit = await engine.Store.Audit.ForEntityAsync(EntityNames.Activity, Assert.Single(activity).Id);
        Assert.Equal("plugin:sales", Assert.Single(audit).Actor);

        var parked = await Eventually(() => dispatcher.ListAsync(AsyncDeliveryStatus.Parked), l => l.Count == 1);
        Assert.Contains("did not finish", Assert.Single(parked).LastError);
        Assert.Contains(engine.Observer.FailedSnapshot(), f => f.Handler == "sales:FollowUp" && f.Error is TimeoutException);
        await dispatcher.StopAsync(CancellationToken.None);
    }
}

public class AsyncLoopTests
{
    [Fact]
    public async Task Async_handlers_that_keep_triggering_themselves_are_stopped_by_the_depth_guard()
    {
        using var engine = new TestEngine(new PipelineOptions
        {
            MaxDepth = 3,
            AsyncMaxAttempts = 1,
            AsyncRetryBaseDelay = TimeSpan.FromMilliseconds(5),
        });
        using var dispatcher = new AsyncDeliveryDispatcher(engine.Pipeline);
        using var _ = engine.On<Customer>("echo", PipelineStage.Async, async (e, ct) =>
        {
            var c = await engine.Store.Customers.GetAsync(e.EntityId, ct);
            c!.SalesStatus = "echo " + e.Sequence;
            await engine.Store.Customers.UpdateAsync(c, ct);
        }, name: "echo:Loop");
        await dispatcher.StartAsync(CancellationToken.None);

        var created = await engine.Store.Customers.CreateAsync(TestEngine.NewCustomer());

        IReadOnlyList<AsyncDeliveryInfo> parked = [];
        for (var i = 0; i < 1500 && parked.Count == 0; i++)
        {
            await Task.Delay(20);
            parked = await dispatcher.ListAsync(AsyncDeliveryStatus.Parked);
        }

        var d = Assert.Single(parked);
        Assert.Contains("depth limit of 3", d.LastError);
        // create (depth 1) -> update (2) -> update (3) -> the fourth write is refused.
        Assert.Equal(3, (await engine.Store.Customers.GetAsync(created.Id))!.Version);
        await dispatcher.StopAsync(CancellationToken.None);
    }
}
