using CrmEngine.Abstractions.Store;
using CrmEngine.Core.Storage;
using LiteDB;
using Microsoft.Extensions.Logging;

namespace CrmEngine.Core.Tests;

public class DurabilityTests
{
    private sealed class FakeWriter(Exception? error) : IDiskWriterProbe
    {
        public bool WaitEmpty(TimeSpan timeout)
        {
            Thread.Sleep(timeout);
            return false; // never drains, like LiteDB's writer after a disk error
        }

        public Exception? Error => error;
    }

    [Fact]
    public async Task A_failed_disk_writer_fails_the_write_with_its_error_instead_of_hanging()
    {
        using var engine = new TestEngine();
        var real = engine.Database.Flush.Probe;
        engine.Database.Flush.Probe = new FakeWriter(new IOException("No space left on device"));

        var write = engine.Store.Customers.CreateAsync(TestEngine.NewCustomer("Lost GmbH"));
        var error = await Assert.ThrowsAsync<StoreException>(() => write.WaitAsync(TimeSpan.FromSeconds(20)));
        Assert.Contains("journal writer failed", error.Message);
        Assert.Contains("No space left on device", error.Message);

        engine.Database.Flush.Probe = real;
    }

    [Fact]
    public async Task A_disk_writer_that_never_finishes_fails_the_write_after_the_timeout()
    {
        using var engine = new TestEngine();
        var real = engine.Database.Flush.Probe;
        engine.Database.Flush.Probe = new FakeWriter(null);
        engine.Database.Flush.Timeout = TimeSpan.FromSeconds(1);

        var write = engine.Store.Customers.CreateAsync(TestEngine.NewCustomer("Slow GmbH"));
        var error = await Assert.ThrowsAsync<StoreException>(() => write.WaitAsync(TimeSpan.FromSeconds(20)));
        Assert.Contains("did not finish within 1 s", error.Message);

        engine.Database.Flush.Probe = real;
    }

    [Fact]
    public void Stopping_a_stuck_writer_gives_up_after_the_timeout_with_a_logged_error()
    {
        using var release = new ManualResetEventSlim();
        var logger = new ListLogger();
        var executor = new WriteExecutor("stuck writer", _ => release.Wait(), logger, TimeSpan.FromMilliseconds(300));
        var pending = executor.Enqueue(_ => 1, groupable: true);

        var watch = System.Diagnostics.Stopwatch.StartNew();
        Assert.False(executor.Stop());
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(10));
        Assert.Contains(logger.Errors, e => e.Contains("did not finish", StringComparison.Ordinal));
        Assert.False(pending.IsCompleted);
        release.Set();
    }

    [Fact]
    public async Task After_commit_actions_run_only_after_the_commit_is_synced()
    {
        using var engine = new TestEngine();
        var order = new List<string>();
        engine.Database.Flush.Synced = _ => { lock (order) { order.Add("synced"); } };

        await engine.Database.WriteAsync(tx =>
        {
            engine.Database.Database.GetCollection("probe").Insert(new BsonDocument { ["_id"] = 1 });
            tx.AfterCommit(() => { lock (order) { order.Add("after-commit"); } });
            return 0;
        });

        Assert.Equal("synced", order[0]);
        Assert.Equal("after-commit", order[^1]);
    }

    internal sealed class ListLogger : ILogger
    {
        public List<string> Errors { get; } = [];

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (logLevel >= LogLevel.Error)
            {
                lock (Errors)
                {
                    Errors.Add(formatter(state, exception));
                }
            }
        }
    }
}
