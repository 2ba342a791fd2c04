using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Pipeline;
using CrmEngine.Abstractions.Store;
using CrmEngine.Core;

namespace CrmEngine.Core.Tests;

public class ConcurrencyAndDepthTests
{
    [Fact]
    public async Task A_stale_update_fails_and_overwrites_nothing()
    {
        using var engine = new TestEngine();
        var v1 = await engine.Store.Customers.CreateAsync(TestEngine.NewCustomer("Original"));
        var first = await engine.Store.Customers.GetAsync(v1.Id);
        var second = await engine.Store.Customers.GetAsync(v1.Id);

        first!.Name = "First edit";
        var v2 = await engine.Store.Customers.UpdateAsync(first);
        Assert.Equal(2, v2.Version);

        second!.Name = "Second edit";
        var ex = await Assert.ThrowsAsync<ConcurrencyException>(() => engine.Store.Customers.UpdateAsync(second));

        Assert.Equal(1, ex.ExpectedVersion);
        Assert.Equal(2, ex.ActualVersion);
        Assert.Equal(v1.Id, ex.EntityId);
        Assert.Equal("First edit", (await engine.Store.Customers.GetAsync(v1.Id))!.Name);
        Assert.Equal(2, await engine.Store.Changes.LastSequenceAsync());
    }

    [Fact]
    public async Task A_stale_delete_fails_and_the_record_stays()
    {
        using var engine = new TestEngine();
        var c = await engine.Store.Customers.CreateAsync(TestEngine.NewCustomer());
        c.Name = "Changed";
        await engine.Store.Customers.UpdateAsync(c);

        await Assert.ThrowsAsync<ConcurrencyException>(() => engine.Store.Customers.DeleteAsync(c.Id, expectedVersion: 1));
        Assert.NotNull(await engine.Store.Customers.GetAsync(c.Id));

        await engine.Store.Customers.DeleteAsync(c.Id, expectedVersion: 2);
        Assert.Null(await engine.Store.Customers.GetAsync(c.Id));
        await Assert.ThrowsAsync<EntityNotFoundException>(() => engine.Store.Customers.DeleteAsync(c.Id));
    }

    [Fact]
    public async Task Creating_an_existing_id_again_is_refused()
    {
        using var engine = new TestEngine();
        var c = await engine.Store.Customers.CreateAsync(new Customer { Id = "fixed-1", Name = "A" });
        Assert.Equal("fixed-1", c.Id);
        await Assert.ThrowsAsync<ConcurrencyException>(() => engine.Store.Customers.CreateAsync(new Customer { Id = "fixed-1", Name = "B" }));
        Assert.Equal("A", (await engine.Store.Customers.GetAsync("fixed-1"))!.Name);
    }

    [Fact]
    public async Task Handlers_that_trigger_each_other_are_stopped_with_the_chain_named()
    {
        using var engine = new TestEngine(new PipelineOptions { MaxDepth = 4 });
        // customer update -> activity create -> customer update -> ... forever.
        using var a = engine.On<Customer>("ping", PipelineStage.PostOperation, async (e, ct) =>
            await engine.Store.Activities.CreateAsync(new Activity { CustomerId = e.EntityId, Subject = "touched" }, ct));
        using var b = engine.On<Activity>("pong", PipelineStage.PostOperation, async (e, ct) =>
        {
            var c = await engine.Store.Customers.GetAsync(e.After!.CustomerId, ct);
            c!.SalesStatus = "touched " + e.Sequence;
            await engine.Store.Customers.UpdateAsync(c, ct);
        });

        var ex = await Assert.ThrowsAsync<PipelineDepthException>(() => engine.Store.Customers.CreateAsync(TestEngine.NewCustomer()));

        Assert.Equal(4, ex.Limit);
        Assert.Equal(5, ex.Chain.Count);
        Assert.StartsWith("customer:create:", ex.Chain[0]);
        Assert.StartsWith("activity:create:", ex.Chain[1]);
        Assert.StartsWith("customer:update:", ex.Chain[2]);
        Assert.Contains(" -> ", ex.Message);
        Assert.Equal(0, await engine.Store.Customers.CountAsync());
        Assert.Equal(0, await engine.Store.Activities.CountAsync());
        Assert.Contains(engine.Observer.FailedSnapshot(), f => f.Owner == "ping" && f.Error is PipelineDepthException);
    }

    [Fact]
    public async Task A_bounded_chain_below_the_limit_commits()
    {
        using var engine = new TestEngine(new PipelineOptions { MaxDepth = 8 });
        using var _ = engine.On<Customer>("bump", PipelineStage.PostOperation, async (e, ct) =>
        {
            if (e.After is { } after && after.VisitIntervalDays is null or < 3)
            {
                after.VisitIntervalDays = (after.VisitIntervalDays ?? 0) + 1;
                await engine.Store.Customers.UpdateAsync(after, ct);
            }
        });

        var c = await engine.Store.Customers.CreateAsync(TestEngine.NewCustomer());
        var stored = await engine.Store.Customers.GetAsync(c.Id);
        Assert.Equal(3, stored!.VisitIntervalDays);
        Assert.Equal(4, stored.Version);
    }
}
