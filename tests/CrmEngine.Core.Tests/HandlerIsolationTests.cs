using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Pipeline;
using CrmEngine.Abstractions.Store;
using CrmEngine.Core.Pipeline;

namespace CrmEngine.Core.Tests;

public class HandlerIsolationTests
{
    [Fact]
    public async Task A_hung_handler_is_abandoned_the_write_fails_and_later_writes_go_on()
    {
        using var engine = new TestEngine(new PipelineOptions { HandlerTimeout = TimeSpan.FromMilliseconds(300) });
        var release = new ManualResetEventSlim();
        var lateCall = new TaskCompletionSource<Exception?>();
        using var hang = engine.On<Customer>("sleepy", PipelineStage.PreOperation, async (e, _) =>
        {
            if (e.After!.Name == "hang")
            {
                release.Wait(); // ignores the cancellation token: truly hung
                try
                {
                    await engine.Store.Activities.CreateAsync(new Activity { CustomerId = e.EntityId, Subject = "late" });
                    lateCall.SetResult(null);
                }
                catch (Exception ex)
                {
                    lateCall.SetResult(ex);
                }
            }
        }, name: "sleepy:Hang");

        var ex = await Assert.ThrowsAsync<HandlerFailedException>(() => engine.Store.Customers.CreateAsync(TestEngine.NewCustomer("hang")));
        Assert.True(ex.TimedOut);
        Assert.Equal("sleepy", ex.OwnerId);
        Assert.Contains("sleepy:Hang", ex.Message);
        Assert.IsType<TimeoutException>(engine.Observer.FailedSnapshot().Single(f => f.Owner == "sleepy").Error);

        // The writer is free: other writes succeed while the abandoned handler is still stuck.
        var ok = await engine.Store.Customers.CreateAsync(TestEngine.NewCustomer("fine"));
        Assert.Equal(1, ok.Version);
        Assert.Equal(1, await engine.Store.Customers.CountAsync());

        // When the abandoned handler wakes up, its store calls are refused.
        release.Set();
        var late = await lateCall.Task.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.IsType<StoreException>(late);
        Assert.Contains("abandoned", late!.Message);
        Assert.Equal(0, await engine.Store.Activities.CountAsync());
    }

    [Fact]
    public async Task A_throwing_handler_is_reported_to_the_fault_observer_and_a_good_one_as_success()
    {
        using var engine = new TestEngine();
        using var good = engine.On<Customer>("good", PipelineStage.Validate, (_, _) => Task.CompletedTask, name: "good:Check");
        using var bad = engine.On<Customer>("bad", PipelineStage.PostOperation, (e, _) =>
            e.After!.Name == "boom" ? throw new ArgumentException("cannot handle this") : Task.CompletedTask, name: "bad:Handler");

        await engine.Store.Customers.CreateAsync(TestEngine.NewCustomer("fine"));
        var ex = await Assert.ThrowsAsync<HandlerFailedException>(() => engine.Store.Customers.CreateAsync(TestEngine.NewCustomer("boom")));

        Assert.Equal("bad", ex.OwnerId);
        Assert.IsType<ArgumentException>(ex.InnerException);
        Assert.Contains(engine.Observer.Succeeded, s => s == ("good", "good:Check"));
        Assert.Contains(engine.Observer.Succeeded, s => s == ("bad", "bad:Handler"));
        var failure = Assert.Single(engine.Observer.FailedSnapshot());
        Assert.Equal(("bad", "bad:Handler"), (failure.Owner, failure.Handler));
        Assert.IsType<ArgumentException>(failure.Error);
        Assert.Equal(1, await engine.Store.Customers.CountAsync());
    }

    [Fact]
    public async Task Unregistering_a_handler_stops_it_from_running()
    {
        using var engine = new TestEngine();
        var calls = 0;
        var token = engine.On<Customer>("p", PipelineStage.PostOperation, (_, _) =>
        {
            calls++;
            return Task.CompletedTask;
        });
        await engine.Store.Customers.CreateAsync(TestEngine.NewCustomer());
        token.Dispose();
        await engine.Store.Customers.CreateAsync(TestEngine.NewCustomer());
        Assert.Equal(1, calls);
    }

    [Fact]
    public async Task Handlers_run_in_order_and_writes_from_them_record_the_owner_as_actor()
    {
        using var engine = new TestEngine();
        var order = new List<string>();
        using var second = engine.On<Customer>("second", PipelineStage.PreOperation, (_, _) => { order.Add("second"); return Task.CompletedTask; }, order: 2);
        using var first = engine.On<Customer>("first", PipelineStage.PreOperation, (_, _) => { order.Add("first"); return Task.CompletedTask; }, order: 1);
        using var writer = engine.On<Customer>("crm.sales", PipelineStage.PostOperation, async (e, ct) =>
            await engine.Store.Activities.CreateAsync(new Activity { CustomerId = e.EntityId, Subject = "hi" }, ct));

        var c = await engine.Store.Customers.CreateAsync(TestEngine.NewCustomer());

        Assert.Equal(["first", "second"], order);
        var activity = Assert.Single(await engine.Store.Activities.FindAsync("customerId", c.Id));
        var audit = await engine.Store.Audit.ForEntityAsync(EntityNames.Activity, activity.Id);
        Assert.Equal("plugin:crm.sales", Assert.Single(audit).Actor);
    }
}
