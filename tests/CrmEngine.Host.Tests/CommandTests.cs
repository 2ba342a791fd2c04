using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Xunit.Abstractions;

namespace CrmEngine.Host.Tests;

/// <summary>service install/uninstall, plugins list, backup and restore, the sample plugin end to end.</summary>
public sealed class CommandTests(ITestOutputHelper output)
{
    private static readonly TimeSpan StopBound = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Service_install_writes_the_systemd_unit_and_uninstall_removes_it()
    {
        using var root = new TestRoot();
        var unit = root.File_("units/crm-test.service");

        var (code, text) = await CrmProcess.RunAsync(root.Path, output,
            "service", "install", "--unit-path", unit, "--name", "crm-test", "--user", "crmsvc");

        Assert.Equal(0, code);
        Assert.Contains("sudo systemctl enable --now crm-test", text, StringComparison.Ordinal);
        var lines = (await File.ReadAllLinesAsync(unit)).ToList();
        Assert.Contains("[Service]", lines);
        Assert.Contains("Type=notify", lines);
        var dotnet = lines.Single(l => l.StartsWith("ExecStart=", StringComparison.Ordinal));
        Assert.EndsWith($" {CrmProcess.CrmDll} run", dotnet, StringComparison.Ordinal);
        Assert.Contains("dotnet", dotnet.Split(' ')[0], StringComparison.Ordinal);
        Assert.Contains($"WorkingDirectory={root.Path}", lines);
        Assert.Contains("User=crmsvc", lines);
        Assert.Contains("Restart=on-failure", lines);
        Assert.Contains("TimeoutStopSec=45", lines);
        Assert.Contains("WantedBy=multi-user.target", lines);

        (code, text) = await CrmProcess.RunAsync(root.Path, output, "service", "uninstall", "--unit-path", unit, "--name", "crm-test");
        Assert.Equal(0, code);
        Assert.False(File.Exists(unit));

        (code, text) = await CrmProcess.RunAsync(root.Path, output, "service", "uninstall", "--unit-path", unit);
        Assert.Equal(1, code);
        Assert.Contains("nothing to uninstall", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Plugins_list_inspects_when_stopped_and_asks_the_service_when_it_runs()
    {
        using var root = new TestRoot(s => s["Plugins"]!["sample.welcome"]!["Enabled"] = false);
        var (code, text) = await CrmProcess.RunAsync(root.Path, output, "plugins", "list");
        Assert.Equal(0, code);
        Assert.Contains("the service is not running", text, StringComparison.Ordinal);
        var row = text.Split('\n').Single(l => l.TrimStart().StartsWith("sample.welcome", StringComparison.Ordinal));
        Assert.Contains("1.0.0", row, StringComparison.Ordinal);
        Assert.Contains("Disabled", row, StringComparison.Ordinal);
        Assert.True(row.Split("Disabled")[1].Trim().Length > 0, "a plugin that is not Active shows its reason: " + row);

        using var running = new TestRoot();
        using var crm = CrmProcess.Start(running.Path, output);
        await crm.WaitForReadyAsync();
        (code, text) = await CrmProcess.RunAsync(running.Path, output, "plugins", "list");
        Assert.Equal(0, code);
        Assert.Contains($"plugins of the running service (pid {crm.Id}", text, StringComparison.Ordinal);
        Assert.Matches(@"sample\.welcome\s+1\.0\.0\s+Active", text);
        crm.Signal(CrmProcess.SIGTERM);
        Assert.Equal(0, await crm.WaitForExitAsync(StopBound));
    }

    [Fact]
    public async Task The_welcome_plugin_adds_a_welcome_activity_to_a_new_customer()
    {
        using var root = new TestRoot();
        using var crm = CrmProcess.Start(root.Path, output);
        await crm.WaitForReadyAsync();

        var id = await root.CreateCustomerAsync("Acme Trading");

        using var http = root.Control();
        JsonArray? activities = null;
        for (var i = 0; i < 600 && (activities is null || activities.Count == 0); i++)
        {
            var timeline = await http.GetFromJsonAsync<JsonObject>($"customers/{id}/timeline");
            activities = timeline!["activities"]!.AsArray();
            if (activities.Count == 0)
            {
                await Task.Delay(100);
            }
        }

        var welcome = Assert.Single(activities!);
        Assert.Equal("sample.welcome", welcome!["source"]!.GetValue<string>());
        Assert.Equal("Welcome", welcome["subject"]!.GetValue<string>());
        Assert.Contains("Acme Trading", welcome["body"]!.GetValue<string>(), StringComparison.Ordinal);

        crm.Signal(CrmProcess.SIGTERM);
        Assert.Equal(0, await crm.WaitForExitAsync(StopBound));
    }

    [Fact]
    public async Task Backup_while_running_and_restore_when_stopped()
    {
        using var root = new TestRoot();
        var backup = root.File_("backups/one.crmbak");
        using (var crm = CrmProcess.Start(root.Path, output))
        {
            await crm.WaitForReadyAsync();
            var kept = await root.CreateCustomerAsync("In the backup");

            var (code, text) = await CrmProcess.RunAsync(root.Path, output, "backup", backup);
            Assert.Equal(0, code);
            Assert.Contains("backup written by the running service", text, StringComparison.Ordinal);
            Assert.True(new FileInfo(backup).Length > 0);

            (code, text) = await CrmProcess.RunAsync(root.Path, output, "backup", backup);
            Assert.Equal(1, code);
            Assert.Contains("refusing to overwrite", text, StringComparison.Ordinal);

            (code, text) = await CrmProcess.RunAsync(root.Path, output, "restore", backup);
            Assert.Equal(1, code);
            Assert.Contains("cannot restore while the service is running", text, StringComparison.Ordinal);

            var lost = await root.CreateCustomerAsync("After the backup");
            crm.Signal(CrmProcess.SIGTERM);
            Assert.Equal(0, await crm.WaitForExitAsync(StopBound));

            var notABackup = root.File_("notes.txt");
            await File.WriteAllTextAsync(notABackup, "this is not a database");
            (code, text) = await CrmProcess.RunAsync(root.Path, output, "restore", notABackup);
            Assert.Equal(1, code);
            Assert.Contains("notes.txt", text, StringComparison.Ordinal);
            Assert.Single(text.Split('\n', StringSplitOptions.RemoveEmptyEntries));

            (code, text) = await CrmProcess.RunAsync(root.Path, output, "restore", backup);
            Assert.Equal(0, code);
            Assert.Contains("restored", text, StringComparison.Ordinal);

            using var again = CrmProcess.Start(root.Path, output);
            await again.WaitForReadyAsync();
            using var http = root.Control();
            Assert.Equal(HttpStatusCode.OK, (await http.GetAsync($"customers/{kept}/timeline")).StatusCode);
            Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync($"customers/{lost}/timeline")).StatusCode);
            again.Signal(CrmProcess.SIGTERM);
            Assert.Equal(0, await again.WaitForExitAsync(StopBound));
        }

        var offline = root.File_("backups/offline.crmbak");
        var (c, t) = await CrmProcess.RunAsync(root.Path, output, "backup", offline);
        Assert.Equal(0, c);
        Assert.Contains("service not running", t, StringComparison.Ordinal);
        Assert.True(File.Exists(offline));
    }

    [Fact]
    public async Task A_backup_taken_during_a_stream_of_writes_restores_to_a_consistent_database()
    {
        using var root = new TestRoot(s => s["Plugins"]!["fixture.stream"] = new JsonObject { ["AckFile"] = "PLACEHOLDER" }, withStreamFixture: true);
        var ackFile = root.File_("acked.txt");
        var settingsFile = root.File_("appsettings.json");
        await File.WriteAllTextAsync(settingsFile, (await File.ReadAllTextAsync(settingsFile)).Replace("PLACEHOLDER", ackFile, StringComparison.Ordinal));
        var backup = root.File_("during-writes.crmbak");

        List<string> ackedBefore;
        using (var crm = CrmProcess.Start(root.Path, output))
        {
            await crm.WaitForReadyAsync();
            var until = DateTime.UtcNow + CrmProcess.StartBound;
            while (Acked(ackFile).Count < 20)
            {
                Assert.True(DateTime.UtcNow < until, "the stream writer wrote nothing:\n" + crm.Output);
                await Task.Delay(20);
            }

            ackedBefore = Acked(ackFile);
            var (code, text) = await CrmProcess.RunAsync(root.Path, output, "backup", backup);
            Assert.Equal(0, code);
            crm.Signal(CrmProcess.SIGTERM);
            Assert.Equal(0, await crm.WaitForExitAsync(StopBound));
        }

        var ackedAtStop = Acked(ackFile);
        Assert.True(ackedAtStop.Count > ackedBefore.Count, "writes went on during and after the backup");

        var (restoreCode, _) = await CrmProcess.RunAsync(root.Path, output, "restore", backup);
        Assert.Equal(0, restoreCode);
        await root.WithStoreAsync(async store =>
        {
            foreach (var id in ackedBefore)
            {
                Assert.NotNull(await store.Customers.GetAsync(id));
            }

            var count = await store.Customers.CountAsync();
            Assert.True(count >= ackedBefore.Count && count <= ackedAtStop.Count + 1, $"{count} customers in the backup");
            var changes = await store.Changes.ReadAsync(0, 100_000);
            Assert.Equal(Enumerable.Range(1, changes.Count).Select(i => (long)i), changes.Select(c => c.Sequence));
        });
    }

    private static List<string> Acked(string path)
    {
        if (!File.Exists(path))
        {
            return [];
        }

        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var reader = new StreamReader(stream);
        var parts = reader.ReadToEnd().Split('\n');
        return parts.Take(parts.Length - 1).Where(p => p.Length > 0).ToList();
    }
}
