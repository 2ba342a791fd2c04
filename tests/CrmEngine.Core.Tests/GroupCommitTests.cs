using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Pipeline;
using CrmEngine.Abstractions.Store;
using CrmEngine.Core.Pipeline;
using LiteDB;

namespace CrmEngine.Core.Tests;

public class GroupCommitTests
{
    [Fact]
    public async Task Concurrent_writes_that_share_a_commit_keep_their_own_outcome()
    {
        using var engine = new TestEngine();
        // Writes named "late-fail" fail after they were stored (post-operation), forcing the shared
        // transaction to be split; "invalid" ones are refused cleanly by validation.
        using var _ = engine.On<Customer>("picky", PipelineStage.PostOperation, async (e, ct) =>
        {
            await engine.Store.Activities.CreateAsync(new Activity { CustomerId = e.EntityId, Subject = "note" }, ct);
            if (e.After!.Name.StartsWith("late-fail", StringComparison.Ordinal))
            {
                throw new InvalidOperationException("refused after the write");
            }
        });

        var names = Enumerable.Range(0, 60).Select(i => (i % 10) switch
        {
            3 => "late-fail " + i,
            7 => "",
            _ => "ok " + i,
        }).ToList();
        var tasks = names.Select(n => Task.Run(() => engine.Store.Customers.CreateAsync(TestEngine.NewCustomer(n)))).ToList();
        await Task.WhenAll(tasks.Select(t => t.ContinueWith(_ => { }, TaskScheduler.Default)));

        for (var i = 0; i < names.Count; i++)
        {
            var t = tasks[i];
            if (names[i].StartsWith("ok", StringComparison.Ordinal))
            {
                Assert.True(t.IsCompletedSuccessfully, names[i]);
                var created = await t;
                Assert.Equal(names[i], (await engine.Store.Customers.GetAsync(created.Id))!.Name);
            }
            else if (names[i].Length == 0)
            {
                Assert.IsType<ValidationException>(t.Exception!.InnerException);
            }
            else
            {
                Assert.IsType<HandlerFailedException>(t.Exception!.InnerException);
            }
        }

        var okCount = names.Count(n => n.StartsWith("ok", StringComparison.Ordinal));
        Assert.Equal(okCount, await engine.Store.Customers.CountAsync());
        Assert.Equal(okCount, await engine.Store.Activities.CountAsync());
        var feed = await engine.Store.Changes.ReadAsync(0, 10_000);
        Assert.Equal(Enumerable.Range(1, 2 * okCount).Select(i => (long)i), feed.Select(c => c.Sequence));
        Assert.DoesNotContain(await engine.Store.Customers.ListAsync(1000), c => !c.Name.StartsWith("ok", StringComparison.Ordinal));

        // A write that failed is not replayed: its handler failure is reported once, not twice.
        Assert.Equal(names.Count(n => n.StartsWith("late-fail", StringComparison.Ordinal)),
            engine.Observer.FailedSnapshot().Count(f => f.Owner == "picky"));
    }

    [Fact]
    public async Task A_direct_write_that_fails_after_changing_data_leaves_nothing_in_a_shared_commit()
    {
        using var engine = new TestEngine();
        using var gate = new ManualResetEventSlim();
        // Hold the writer so that the next writes queue up and are run together in one transaction.
        var blocker = engine.Database.WriteAsync(_ => { gate.Wait(); return 0; });
        await Task.Delay(100);
        var failing = engine.Database.WriteAsync<int>(_ =>
        {
            engine.Database.Database.GetCollection("side").Insert(new BsonDocument { ["_id"] = "half" });
            throw new StoreException("refused after writing");
        });
        var good = engine.Store.Customers.CreateAsync(TestEngine.NewCustomer("Kept GmbH"));
        await Task.Delay(100);
        gate.Set();

        await blocker;
        await Assert.ThrowsAsync<StoreException>(() => failing);
        var kept = await good;
        Assert.NotNull(await engine.Store.Customers.GetAsync(kept.Id));
        Assert.Null(engine.Database.Database.GetCollection("side").FindById("half"));
    }
}
