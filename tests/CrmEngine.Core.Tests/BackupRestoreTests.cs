using CrmEngine.Abstractions.Store;
using CrmEngine.Core.Storage;

namespace CrmEngine.Core.Tests;

public class BackupRestoreTests
{
    [Fact]
    public async Task A_backup_taken_while_writes_run_is_consistent_and_restores()
    {
        using var engine = new TestEngine();
        for (var i = 0; i < 20; i++)
        {
            await engine.Store.Customers.CreateAsync(TestEngine.NewCustomer($"Before {i}"));
        }

        using var stop = new CancellationTokenSource();
        var writes = Task.Run(async () =>
        {
            var n = 0;
            while (!stop.IsCancellationRequested)
            {
                await engine.Store.Customers.CreateAsync(TestEngine.NewCustomer($"During {n++}"));
            }

            return n;
        });

        var backup = Path.Combine(engine.Folder, "backups", "crm-backup.db");
        await Task.Delay(50);
        await engine.Database.BackupAsync(backup);
        await stop.CancelAsync();
        await writes;
        var liveCount = await engine.Store.Customers.CountAsync();

        // The copy opens as a CrmEngine database; every customer in it has its change record.
        var restoredFolder = Path.Combine(engine.Folder, "restored");
        var options = new StoreOptions { DataDirectory = restoredFolder, FileName = "crm.db" };
        Assert.Null(CrmDatabase.Restore(backup, options));
        long count;
        using (var restored = new TestEngine(folder: restoredFolder))
        {
            count = await restored.Store.Customers.CountAsync();
            Assert.InRange(count, 20, liveCount);
            Assert.Equal(count, await restored.Store.Changes.LastSequenceAsync());
            await restored.Store.Customers.CreateAsync(TestEngine.NewCustomer("After restore"));
        }

        // Restoring again keeps the file it replaces.
        var previous = CrmDatabase.Restore(backup, options);
        Assert.NotNull(previous);
        Assert.True(File.Exists(previous));
        Assert.Contains(".before-restore-", previous);
        using (var again = new TestEngine(folder: restoredFolder))
        {
            Assert.Equal(count, await again.Store.Customers.CountAsync());
        }
    }

    [Fact]
    public async Task Backup_refuses_an_existing_target_and_the_live_file()
    {
        using var engine = new TestEngine();
        var target = Path.Combine(engine.Folder, "exists.db");
        await File.WriteAllTextAsync(target, "keep me");

        var exists = await Assert.ThrowsAsync<StoreException>(() => engine.Database.BackupAsync(target));
        Assert.Contains("already exists", exists.Message);
        Assert.Equal("keep me", await File.ReadAllTextAsync(target));

        var live = await Assert.ThrowsAsync<StoreException>(() => engine.Database.BackupAsync(engine.Database.FilePath));
        Assert.Contains("live database", live.Message);
    }

    [Fact]
    public async Task Restore_refuses_while_the_database_is_in_use_and_refuses_foreign_files()
    {
        using var engine = new TestEngine();
        await engine.Store.Customers.CreateAsync(TestEngine.NewCustomer());
        var backup = Path.Combine(engine.Folder, "b.db");
        await engine.Database.BackupAsync(backup);

        Assert.True(CrmDatabase.IsInUse(engine.Database.FilePath));
        var inUse = Assert.Throws<StoreException>(() => CrmDatabase.Restore(backup, engine.Options));
        Assert.Contains("in use", inUse.Message);

        var text = Path.Combine(engine.Folder, "notes.db");
        await File.WriteAllTextAsync(text, "this is not a database");
        var other = new StoreOptions { DataDirectory = Path.Combine(engine.Folder, "other"), FileName = "crm.db" };
        var foreign = Assert.Throws<StoreException>(() => CrmDatabase.Restore(text, other));
        Assert.Contains("notes.db", foreign.Message);
        Assert.False(File.Exists(CrmDatabase.ResolveFilePath(other, null)));

        var plain = Path.Combine(engine.Folder, "plain.db");
        using (var db = new LiteDB.LiteDatabase(plain))
        {
            db.GetCollection("things").Insert(new LiteDB.BsonDocument { ["x"] = 1 });
        }

        var notCrm = Assert.Throws<StoreException>(() => CrmDatabase.Restore(plain, other));
        Assert.Contains("not a CrmEngine database", notCrm.Message);
        var missing = Assert.Throws<StoreException>(() => CrmDatabase.Restore(Path.Combine(engine.Folder, "nope.db"), other));
        Assert.Contains("does not exist", missing.Message);
    }

    [Fact]
    public void Opening_a_foreign_LiteDB_file_is_refused()
    {
        var folder = Path.Combine(Path.GetTempPath(), "crm-core-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        try
        {
            using (var db = new LiteDB.LiteDatabase(Path.Combine(folder, "crm.db")))
            {
                db.GetCollection("things").Insert(new LiteDB.BsonDocument { ["x"] = 1 });
            }

            var ex = Assert.Throws<StoreException>(() => new CrmDatabase(new StoreOptions { DataDirectory = folder }));
            Assert.Contains("not a CrmEngine database", ex.Message);
        }
        finally
        {
            TestEngine.TryDelete(folder);
        }
    }

    [Fact]
    public async Task Every_acknowledged_write_is_there_after_reopening()
    {
        var folder = Path.Combine(Path.GetTempPath(), "crm-core-tests", Guid.NewGuid().ToString("N"));
        try
        {
            var ids = new List<string>();
            var engine = new TestEngine(folder: folder);
            var tasks = Enumerable.Range(0, 100).Select(i => engine.Store.Customers.CreateAsync(TestEngine.NewCustomer($"C{i}"))).ToList();
            // Dispose while writes may still be queued: queued writes are finished, not dropped.
            engine.Dispose();
            foreach (var t in tasks)
            {
                ids.Add((await t).Id);
            }

            using var reopened = new TestEngine(folder: folder);
            Assert.Equal(100, await reopened.Store.Customers.CountAsync());
            foreach (var id in ids)
            {
                Assert.NotNull(await reopened.Store.Customers.GetAsync(id));
            }
        }
        finally
        {
            TestEngine.TryDelete(folder);
        }
    }
}

public class InUseTests
{
    [Fact]
    public void A_database_is_in_use_while_open_and_free_after_dispose()
    {
        var engine = new TestEngine();
        try
        {
            Assert.True(CrmDatabase.IsInUse(engine.Options));
            engine.Database.Dispose();
            Assert.False(CrmDatabase.IsInUse(engine.Options));
            Assert.False(CrmDatabase.IsInUse(Path.Combine(engine.Folder, "missing.db")));
        }
        finally
        {
            engine.Dispose();
        }
    }
}
