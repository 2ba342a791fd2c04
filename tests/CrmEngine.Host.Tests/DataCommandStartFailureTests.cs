using Xunit.Abstractions;

namespace CrmEngine.Host.Tests;

/// <summary>
/// A data verb on a stopped engine starts the store in its own process; when that start fails the verb ends with exit 3
/// and one line naming the cause, never an unhandled exception. Provoked honestly: another program holds an exclusive
/// lock on the store file (this test process, as a backup tool or a second copy of the file's owner could).
/// </summary>
public sealed class DataCommandStartFailureTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Import_exits_3_naming_the_store_file_when_another_program_holds_it_locked_and_works_once_it_is_free()
    {
        using var root = new TestRoot();
        var first = root.File_("first.csv");
        var second = root.File_("second.csv");
        await File.WriteAllLinesAsync(first, ["name,emails", "Alpha GmbH,alpha@example.test"]);
        await File.WriteAllLinesAsync(second, ["name,emails", "Beta AG,beta@example.test"]);

        var (code, text) = await CrmProcess.RunAsync(root.Path, output, "import", "customers", first);
        Assert.Equal(0, code);
        var store = Path.Combine(root.Path, "data", "crm.db");
        Assert.True(File.Exists(store), text);

        // FileShare.None takes an exclusive lock on Unix (flock); the engine's shared lock on its file is then refused.
        await using (new FileStream(store, FileMode.Open, FileAccess.ReadWrite, FileShare.None))
        {
            (code, text) = await CrmProcess.RunAsync(root.Path, output, "import", "customers", second);
            Assert.Equal(3, code);
            Assert.Contains("the engine could not start for this command", text, StringComparison.Ordinal);
            Assert.Contains("crm.db", text, StringComparison.Ordinal);
            Assert.DoesNotContain("Unhandled exception", text, StringComparison.Ordinal);
        }

        // Nothing was lost and the refused import runs once the file is free.
        (code, text) = await CrmProcess.RunAsync(root.Path, output, "import", "customers", second);
        Assert.Equal(0, code);
        Assert.Contains("1 created", text, StringComparison.Ordinal);
        (code, text) = await CrmProcess.RunAsync(root.Path, output, "import", "customers", first);
        Assert.Equal(0, code);
        Assert.Contains("0 created, 0 updated, 1 unchanged", text, StringComparison.Ordinal);
    }
}
