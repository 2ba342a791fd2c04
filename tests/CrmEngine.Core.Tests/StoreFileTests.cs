using System.Collections.Concurrent;
using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Store;
using CrmEngine.Core.Storage;

namespace CrmEngine.Core.Tests;

/// <summary>The engine's own file streams under LiteDB: one journal sync per commit, and a journal that recovers.</summary>
public class StoreFileTests
{
    [Fact]
    public async Task A_bulk_batch_syncs_the_journal_once_per_commit_not_once_per_page()
    {
        using var engine = new TestEngine();
        var before = engine.Database.JournalBarriers;
        var results = await engine.Store.Customers.WriteManyAsync(
            Enumerable.Range(0, 1_500).Select(i => new BulkWrite<Customer>(BulkOperation.Create, TestEngine.NewCustomer($"Sync {i}", $"s{i}@example.com"))).ToList());

        Assert.All(results, r => Assert.True(r.Succeeded));
        // 1,500 customers with change and audit records fill hundreds of journal pages (LiteDB alone synced after
        // every one). Syncs are now made only before a page flagged "confirmed": LiteDB flags the last page of the
        // commit, and a page that was the last of an earlier commit and is written again keeps its flag, so a big
        // commit makes a few dozen barriers at most (measured: 22), never one per page.
        var barriers = engine.Database.JournalBarriers - before;
        Assert.InRange(barriers, 1, 60);
        var pages = new FileInfo(CrmDatabase.LogFileOf(engine.Database.FilePath)).Length / LiteDbFileStream.PageSize;
        Assert.True(pages > 5 * barriers, $"{pages} journal pages, {barriers} syncs");
    }

    [Fact]
    public async Task The_journal_marks_exactly_the_last_page_of_each_commit_as_confirmed()
    {
        // Checks the LiteDB page layout the journal stream relies on (the "confirmed" flag at header byte 18).
        using var engine = new TestEngine();
        await engine.Store.Customers.CreateAsync(TestEngine.NewCustomer("One"));
        await engine.Store.Customers.CreateAsync(TestEngine.NewCustomer("Two"));
        var barriers = engine.Database.JournalBarriers;

        var log = CrmDatabase.LogFileOf(engine.Database.FilePath);
        byte[] bytes;
        using (var read = new FileStream(log, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete))
        {
            bytes = new byte[read.Length];
            read.ReadExactly(bytes);
        }

        Assert.True(bytes.Length > 0 && bytes.Length % LiteDbFileStream.PageSize == 0, $"journal of {bytes.Length} bytes");
        var confirmed = Enumerable.Range(0, bytes.Length / LiteDbFileStream.PageSize)
            .Count(p => bytes[p * LiteDbFileStream.PageSize + LiteDbFileStream.ConfirmedFlagOffset] == 1);
        Assert.True(barriers >= 2, $"{barriers} barrier(s)");
        Assert.Equal(barriers, confirmed);
    }

    [Fact]
    public async Task Acknowledged_writes_are_in_the_journal_and_recovered_from_a_copy_taken_while_the_engine_runs()
    {
        using var engine = new TestEngine();
        var results = await engine.Store.Customers.WriteManyAsync(
            Enumerable.Range(0, 300).Select(i => new BulkWrite<Customer>(BulkOperation.Create, TestEngine.NewCustomer($"Kept {i}"))).ToList());
        var single = await engine.Store.Customers.CreateAsync(TestEngine.NewCustomer("Single"));

        // As if the machine stopped now: the files as they are, without a checkpoint or a clean close.
        var copy = Path.Combine(Path.GetTempPath(), "crm-core-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(copy);
        try
        {
            foreach (var file in new[] { engine.Database.FilePath, CrmDatabase.LogFileOf(engine.Database.FilePath) })
            {
                using var source = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
                using var target = File.Create(Path.Combine(copy, Path.GetFileName(file)));
                source.CopyTo(target);
            }

            using var recovered = new TestEngine(folder: copy);
            Assert.Equal(301, await recovered.Store.Customers.CountAsync());
            Assert.Equal("Single", (await recovered.Store.Customers.GetAsync(single.Id))!.Name);
            Assert.Equal("Kept 299", (await recovered.Store.Customers.GetAsync(results[299].Stored!.Id))!.Name);
            Assert.Equal(301, await recovered.Store.Changes.LastSequenceAsync());
        }
        finally
        {
            TestEngine.TryDelete(copy);
        }
    }

    [Fact]
    public async Task A_closed_store_leaves_no_empty_journal_and_reopens_with_its_data()
    {
        var folder = Path.Combine(Path.GetTempPath(), "crm-core-tests", Guid.NewGuid().ToString("N"));
        try
        {
            string id;
            using (var engine = new TestEngine(folder: folder))
            {
                id = (await engine.Store.Customers.CreateAsync(TestEngine.NewCustomer("Persisted"))).Id;
                Assert.True(CrmDatabase.IsInUse(engine.Options));
            }

            Assert.False(File.Exists(Path.Combine(folder, "crm-log.db")));
            using var reopened = new TestEngine(folder: folder);
            Assert.Equal("Persisted", (await reopened.Store.Customers.GetAsync(id))!.Name);
        }
        finally
        {
            TestEngine.TryDelete(folder);
        }
    }

    /// <summary>
    /// The failure that sank the first attempt (a5c4c87): readers on other threads shared the writer's stream position
    /// and read the wrong page ("page type must be collection page", then LiteDB closed itself). Readers of several
    /// collections, including plugin collections created meanwhile, run against bulk writes for several rounds; every
    /// read must succeed and see consistent data.
    /// </summary>
    [Fact]
    public async Task Concurrent_readers_of_several_collections_never_fail_during_bulk_writes()
    {
        var rounds = int.TryParse(Environment.GetEnvironmentVariable("CRM_STRESS_ROUNDS"), out var r) ? r : 4;
        using var engine = new TestEngine();
        var errors = new ConcurrentQueue<Exception>();
        var reads = 0L;
        using var stop = new CancellationTokenSource();
        var created = new ConcurrentQueue<IEntitySet<FindAndCollectionTests.Lead>>();

        async Task ReadLoop(int which)
        {
            var store = engine.Provider.ForActor("user:reader" + which);
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    switch ((which + Interlocked.Read(ref reads)) % 5)
                    {
                        case 0:
                            foreach (var c in await store.Customers.FindAsync(IndexedField.Email, "bulk7@example.com"))
                            {
                                Assert.Equal("bulk7@example.com", c.Emails[0]);
                            }

                            break;
                        case 1:
                            var page = await store.Customers.ListAsync(50);
                            Assert.All(page, c => Assert.StartsWith("Bulk", c.Name, StringComparison.Ordinal));
                            break;
                        case 2:
                            var changes = await store.Changes.ReadAsync(0, 200);
                            Assert.Equal(changes.Select(x => x.Sequence).Order(), changes.Select(x => x.Sequence));
                            break;
                        case 3:
                            foreach (var leads in created)
                            {
                                Assert.All(await leads.ListAsync(20), l => Assert.StartsWith("Lead", l.Title, StringComparison.Ordinal));
                            }

                            break;
                        default:
                            _ = await store.Customers.CountAsync();
                            break;
                    }

                    Interlocked.Increment(ref reads);
                }
                catch (Exception ex)
                {
                    errors.Enqueue(ex);
                }

                await Task.Yield();
            }
        }

        var readers = Enumerable.Range(0, 3).Select(i => Task.Run(() => ReadLoop(i))).ToList();
        for (var round = 0; round < rounds; round++)
        {
            var results = await engine.Store.Customers.WriteManyAsync(Enumerable.Range(0, 1_500)
                .Select(i => new BulkWrite<Customer>(BulkOperation.Create, TestEngine.NewCustomer($"Bulk {round}.{i}", $"bulk{i}@example.com"))).ToList());
            Assert.All(results, x => Assert.True(x.Succeeded, x.Error?.Message));

            // A new plugin collection every round, written while the readers run (and read by them from then on).
            var leads = engine.Provider.ForActor("plugin:stress" + round, "stress" + round).Collection<FindAndCollectionTests.Lead>("leads");
            await leads.CreateAsync(new FindAndCollectionTests.Lead { Title = "Lead " + round });
            created.Enqueue(leads);
        }

        await stop.CancelAsync();
        await Task.WhenAll(readers);
        Assert.True(errors.IsEmpty, string.Join("\n", errors.Take(5)));
        Assert.True(Interlocked.Read(ref reads) > rounds, $"{reads} reads");
        Assert.Equal(rounds * 1_500L, await engine.Store.Customers.CountAsync());
    }

    /// <summary>
    /// The root cause of the first attempt's failure, tested on the stream itself: LiteDB hands ONE stream instance to
    /// every reader thread and to its journal writer, each doing "Position = x; Read/Write". Positions must not leak
    /// between threads: every thread reads exactly the page it asked for while another thread writes.
    /// </summary>
    [Fact]
    public async Task The_shared_stream_keeps_a_position_per_thread()
    {
        const int pages = 64;
        var folder = Path.Combine(Path.GetTempPath(), "crm-core-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        try
        {
            using var stream = LiteDbFileStream.Open(Path.Combine(folder, "pages.db"), isJournal: false);
            var page = new byte[LiteDbFileStream.PageSize];
            for (var p = 0; p < pages; p++)
            {
                Array.Fill(page, (byte)p);
                stream.Position = (long)p * page.Length;
                stream.Write(page, 0, page.Length);
            }

            // Two threads take turns: A seeks, then B seeks and reads, then A reads. With one shared position A would
            // read B's page (and B would read past its own); each must read exactly the page it sought.
            var wrong = 0;
            var turns = int.TryParse(Environment.GetEnvironmentVariable("CRM_STRESS_ROUNDS"), out var r) ? r * 100 : 300;
            using var aSought = new SemaphoreSlim(0);
            using var bDone = new SemaphoreSlim(0);
            void Check(int expected, byte[] buffer, int read)
            {
                if (read != buffer.Length || buffer[0] != expected || buffer[^1] != expected)
                {
                    Interlocked.Increment(ref wrong);
                }
            }

            // Blocking waits on dedicated threads: a thread keeps its own position only while it stays that thread.
            var a = Task.Factory.StartNew(() =>
            {
                var buffer = new byte[LiteDbFileStream.PageSize];
                for (var i = 0; i < turns; i++)
                {
                    var p = i % pages;
                    stream.Position = (long)p * buffer.Length;
                    aSought.Release();
                    bDone.Wait();
                    Check(p, buffer, stream.Read(buffer, 0, buffer.Length));
                }
            }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
            var b = Task.Factory.StartNew(() =>
            {
                var buffer = new byte[LiteDbFileStream.PageSize];
                for (var i = 0; i < turns; i++)
                {
                    aSought.Wait();
                    var p = pages - 1 - i % pages;
                    stream.Position = (long)p * buffer.Length;
                    Check(p, buffer, stream.Read(buffer, 0, buffer.Length));
                    bDone.Release();
                }
            }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
            await Task.WhenAll(a, b);
            Assert.Equal(0, wrong);
        }
        finally
        {
            TestEngine.TryDelete(folder);
        }
    }
}
