using CrmEngine.Abstractions.Store;
using CrmEngine.Core.Storage;

namespace CrmEngine.Core.Tests;

public class BackupRestoreRecoveryTests
{
    [Fact]
    public async Task A_failed_backup_leaves_no_partial_file_and_the_next_backup_to_that_name_works()
    {
        using var engine = new TestEngine();
        await engine.Store.Customers.CreateAsync(TestEngine.NewCustomer("Backed up GmbH"));
        var target = Path.Combine(engine.Folder, "backups", "crm-backup.db");
        Directory.CreateDirectory(target); // the final rename fails: a folder is in the way

        await Assert.ThrowsAnyAsync<IOException>(() => engine.Database.BackupAsync(target));
        Assert.False(File.Exists(target + ".partial"));

        Directory.Delete(target);
        await engine.Database.BackupAsync(target);
        Assert.True(File.Exists(target));
        Assert.False(File.Exists(target + ".partial"));
    }

    [Fact]
    public async Task Restore_keeps_the_replaced_database_complete_with_its_journal_merged_in()
    {
        using var source = new TestEngine();
        await source.Store.Customers.CreateAsync(TestEngine.NewCustomer("From backup"));
        var backup = Path.Combine(source.Folder, "backup.db");
        await source.Database.BackupAsync(backup);

        // A database left with a journal (the engine was killed): copy the files of a running engine.
        var liveFolder = Path.Combine(source.Folder, "live");
        Directory.CreateDirectory(liveFolder);
        string onlyInJournal;
        using (var running = new TestEngine())
        {
            await running.Store.Customers.CreateAsync(TestEngine.NewCustomer("Checkpointed"));
            running.Database.Database.Checkpoint();
            onlyInJournal = (await running.Store.Customers.CreateAsync(TestEngine.NewCustomer("Only in journal"))).Id;
            var log = CrmDatabase.LogFileOf(running.Database.FilePath);
            Assert.True(File.Exists(log));
            File.Copy(running.Database.FilePath, Path.Combine(liveFolder, "crm.db"));
            File.Copy(log, CrmDatabase.LogFileOf(Path.Combine(liveFolder, "crm.db")));
        }

        var options = new StoreOptions { DataDirectory = liveFolder, FileName = "crm.db" };
        var previous = CrmDatabase.Restore(backup, options);

        Assert.NotNull(previous);
        Assert.False(File.Exists(CrmDatabase.LogFileOf(Path.Combine(liveFolder, "crm.db"))), "no journal of the old file beside the restored one");
        using (var restored = new TestEngine(folder: liveFolder))
        {
            var names = (await restored.Store.Customers.ListAsync(limit: 10)).Select(c => c.Name).ToList();
            Assert.Equal(["From backup"], names);
        }

        // The kept file opens on its own with every write it had, the journaled one included.
        var keptFolder = Path.Combine(source.Folder, "kept");
        Directory.CreateDirectory(keptFolder);
        File.Copy(previous, Path.Combine(keptFolder, "crm.db"));
        using (var kept = new TestEngine(folder: keptFolder))
        {
            Assert.NotNull(await kept.Store.Customers.GetAsync(onlyInJournal));
            Assert.Equal(2, await kept.Store.Customers.CountAsync());
        }
    }
}
