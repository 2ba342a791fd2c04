using CrmEngine.Abstractions.Model;
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
        // 1,500 customers with change and audit records fill hundreds of journal pages; one commit syncs before its
        // confirmed page once (LiteDB alone synced after every page).
        Assert.Equal(1, engine.Database.JournalBarriers - before);
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
}
