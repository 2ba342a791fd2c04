using Xunit.Abstractions;

namespace CrmEngine.Host.Tests;

/// <summary>Start, the per-plugin lines and "ready", clean stop on signals, configuration errors.</summary>
public sealed class HostLifecycleTests(ITestOutputHelper output)
{
    private static readonly TimeSpan StopBound = TimeSpan.FromSeconds(60);

    /// <summary>Issue 2: a signal stops the engine cleanly within 30 s (a behaviour bound, not a benchmark).</summary>
    private static readonly TimeSpan SignalStopBound = TimeSpan.FromSeconds(30);

    [Theory]
    [InlineData(CrmProcess.SIGTERM)]
    [InlineData(CrmProcess.SIGINT)]
    public async Task Starts_logs_a_line_per_plugin_then_ready_and_stops_cleanly_on_a_signal(int signal)
    {
        using var root = new TestRoot();
        using var crm = CrmProcess.Start(root.Path, output);

        await crm.WaitForReadyAsync();
        var lines = crm.Lines.ToList();
        // Full logger names on the console: two plugins' loggers must not look alike.
        var pluginLine = lines.FindIndex(l => l.Contains("INFO  CrmEngine.PluginHost.PluginManager: Plugin sample.welcome 1.0.0 Active", StringComparison.Ordinal));
        var readyLine = lines.FindIndex(l => l.Contains("CrmEngine ready", StringComparison.Ordinal));
        Assert.True(pluginLine >= 0, "no line for the sample plugin:\n" + crm.Output);
        Assert.True(pluginLine < readyLine, "the plugin line must come before ready");
        Assert.True(File.Exists(Path.Combine(root.DataDirectory, "crm.db")), "the database is created under ./data of the content root");

        crm.Signal(signal);
        var code = await crm.WaitForExitAsync(SignalStopBound);

        Assert.Equal(0, code);
        Assert.Contains("Store closed", crm.Output, StringComparison.Ordinal);
        Assert.Contains("CrmEngine stopped", crm.Output, StringComparison.Ordinal);
        Assert.False(File.Exists(root.Socket), "the control socket is removed on stop");
        var log = await File.ReadAllTextAsync(Path.Combine(root.Path, "logs", "crm.log"));
        Assert.Contains("CrmEngine ready", log, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(CrmProcess.SIGTERM)]
    [InlineData(CrmProcess.SIGINT)]
    public async Task A_signal_with_writes_in_flight_stops_within_30_s_and_keeps_every_acknowledged_write(int signal)
    {
        using var root = new TestRoot(withStreamFixture: true);
        var ackFile = root.File_("acked.txt");
        StreamFixture.Configure(root, ackFile, writers: 8);

        using (var crm = CrmProcess.Start(root.Path, output))
        {
            await crm.WaitForReadyAsync();
            Assert.Contains(crm.Lines, l => l.Contains("Plugin fixture.stream 1.0.0 Active", StringComparison.Ordinal));
            await StreamFixture.WaitForAcksAsync(crm, ackFile, 200);

            var before = StreamFixture.ReadAcked(ackFile).Count;
            crm.Signal(signal);
            var code = await crm.WaitForExitAsync(SignalStopBound);

            Assert.Equal(0, code);
            Assert.Contains("Store closed", crm.Output, StringComparison.Ordinal);
            Assert.Contains("CrmEngine stopped", crm.Output, StringComparison.Ordinal);
            Assert.DoesNotContain("   at ", crm.Output, StringComparison.Ordinal);
            output.WriteLine($"{before} acknowledged at the signal, {StreamFixture.ReadAcked(ackFile).Count} at the exit");
        }

        var acked = StreamFixture.ReadAcked(ackFile);
        Assert.True(acked.Count >= 200);
        await root.WithStoreAsync(async store =>
        {
            var missing = await StreamFixture.MissingAsync(store, acked);
            Assert.True(missing.Count == 0, $"acknowledged but missing after a clean stop: {string.Join(", ", missing.Take(10))}");
        });

        // And the engine starts again on the same data.
        StreamFixture.Patch(root, s => s["Plugins"]!["fixture.stream"]!["Enabled"] = false);
        using var again = CrmProcess.Start(root.Path, output);
        await again.WaitForReadyAsync();
        again.Signal(CrmProcess.SIGTERM);
        Assert.Equal(0, await again.WaitForExitAsync(SignalStopBound));
    }

    [Fact]
    public async Task A_plugin_failure_shows_its_exception_message_once_on_the_console()
    {
        using var root = new TestRoot(withStreamFixture: true);
        StreamFixture.Patch(root, s => s["Plugins"]!["fixture.stream"] = new System.Text.Json.Nodes.JsonObject { ["ThrowOnStart"] = "fixture start refused" });
        using var crm = CrmProcess.Start(root.Path, output);
        await crm.WaitForReadyAsync();

        var line = Assert.Single(crm.Lines, l => l.Contains("CrmEngine.PluginHost.PluginManager: Plugin fixture.stream: StartAsync threw", StringComparison.Ordinal));
        Assert.Equal(1, line.Split("fixture start refused").Length - 1);
        Assert.Contains(crm.Lines, l => l.Contains("Plugin fixture.stream 1.0.0 Malfunctioned: StartAsync threw InvalidOperationException: fixture start refused", StringComparison.Ordinal));
        Assert.DoesNotContain("   at ", crm.Output, StringComparison.Ordinal);
        crm.Signal(CrmProcess.SIGTERM);
        Assert.Equal(0, await crm.WaitForExitAsync(SignalStopBound));

        // The log file keeps the whole exception.
        var log = await File.ReadAllTextAsync(Path.Combine(root.Path, "logs", "crm.log"));
        Assert.Contains("System.InvalidOperationException: fixture start refused", log, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_windows_service_name_is_a_checked_setting()
    {
        using var root = new TestRoot();
        var (code, text) = await CrmProcess.RunAsync(root.Path, output, "config", "check", "--Host:ServiceName=crm test");
        Assert.Equal(2, code);
        Assert.Contains("configuration error: Host:ServiceName: Host:ServiceName may hold letters", text, StringComparison.Ordinal);

        (code, text) = await CrmProcess.RunAsync(root.Path, output, "config", "check", "--Host:ServiceName=crm-test");
        Assert.Equal(0, code);
        Assert.Contains("configuration OK", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_bad_value_on_the_command_line_stops_start_up_naming_the_key()
    {
        using var root = new TestRoot();
        var (code, text) = await CrmProcess.RunAsync(root.Path, output, "--Pipeline:MaxDepth=0");

        Assert.Equal(2, code);
        Assert.Contains("configuration error: Pipeline:MaxDepth", text, StringComparison.Ordinal);
        Assert.Contains("between 1 and 64", text, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", text, StringComparison.Ordinal);
        Assert.DoesNotContain("CrmEngine ready", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_bad_value_in_appsettings_stops_start_up_naming_the_key()
    {
        using var root = new TestRoot(s => s["Host"]!["ShutdownTimeout"] = "soon");
        var (code, text) = await CrmProcess.RunAsync(root.Path, output, "run");

        Assert.Equal(2, code);
        Assert.Contains("configuration error: Host:ShutdownTimeout: 'soon' is not a valid duration", text, StringComparison.Ordinal);
        Assert.Single(text.Split('\n'), l => l.Contains("configuration error", StringComparison.Ordinal));
        Assert.DoesNotContain("   at ", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_bad_value_in_a_CRM_environment_variable_stops_start_up_naming_the_key()
    {
        using var root = new TestRoot();
        using var crm = CrmProcess.StartWith(new Dictionary<string, string> { ["CRM_Store__FileName"] = "nested/crm.db" }, root.Path, output);
        var code = await crm.WaitForExitAsync(StopBound);

        Assert.Equal(2, code);
        Assert.Contains("configuration error: Store:FileName", crm.Output, StringComparison.Ordinal);
        Assert.Contains("nested/crm.db", crm.Output, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(root.DataDirectory, "crm.db")), "nothing is opened when the configuration is bad");
    }

    [Theory]
    [InlineData("run")]
    [InlineData("config check")]
    public async Task A_malformed_appsettings_file_is_one_line_naming_the_file_and_line(string command)
    {
        using var root = new TestRoot();
        var file = root.File_("appsettings.json");
        var lines = (await File.ReadAllLinesAsync(file)).ToList();
        // Line 3 (1-based) loses its separator: "key": value "key2" ...
        lines.Insert(2, "  \"Broken\": 1 \"Oops\": 2,");
        await File.WriteAllLinesAsync(file, lines);

        var (code, text) = await CrmProcess.RunAsync(root.Path, output, command.Split(' '));

        Assert.Equal(2, code);
        var line = Assert.Single(text.Split('\n'), l => l.Length > 0);
        Assert.StartsWith($"[stderr] configuration error: {file} line 3: ", line, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", text, StringComparison.Ordinal);
        Assert.DoesNotContain("Unhandled", text, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(root.DataDirectory, "crm.db")), "nothing is opened when the configuration is bad");
    }

    [Fact]
    public async Task A_malformed_environment_settings_file_is_one_line_naming_the_file_and_line()
    {
        using var root = new TestRoot();
        var file = root.File_("appsettings.Staging.json");
        await File.WriteAllTextAsync(file, "{\n  \"Store\": {\n    \"FileName\": x.db\n  }\n}\n");

        var (code, text) = await CrmProcess.RunAsync(root.Path, output, "config", "check", "--environment", "Staging");

        Assert.Equal(2, code);
        var line = Assert.Single(text.Split('\n'), l => l.Contains("configuration error", StringComparison.Ordinal));
        Assert.StartsWith($"[stderr] configuration error: {file} line 3: ", line, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_disabled_plugin_gets_its_line_with_the_reason_and_the_engine_still_gets_ready()
    {
        using var root = new TestRoot(s => s["Plugins"]!["sample.welcome"]!["Enabled"] = false);
        using var crm = CrmProcess.Start(root.Path, output, "run");
        await crm.WaitForReadyAsync();

        var line = Assert.Single(crm.Lines, l => l.Contains("Plugin sample.welcome 1.0.0 Disabled", StringComparison.Ordinal));
        Assert.Matches(@"Disabled: \S+", line);
        Assert.Contains("0 of 1 plugins active", crm.Output, StringComparison.Ordinal);
        crm.Signal(CrmProcess.SIGTERM);
        Assert.Equal(0, await crm.WaitForExitAsync(StopBound));
    }

    [Fact]
    public async Task Config_check_lists_every_bad_key_and_passes_on_the_default()
    {
        using var root = new TestRoot(s =>
        {
            s["Store"]!["FileName"] = "sub/dir.db";
            s["Plugins"]!["sample.welcome"]!["Enabled"] = "perhaps";
            s["PluginHost"]!["StartTimeot"] = "00:00:01";
        });

        var (code, text) = await CrmProcess.RunAsync(root.Path, output, "config", "check");
        Assert.Equal(2, code);
        Assert.Contains("configuration error: Store:FileName", text, StringComparison.Ordinal);
        Assert.Contains("configuration error: Plugins:sample.welcome:Enabled: 'perhaps' is not a valid boolean", text, StringComparison.Ordinal);
        Assert.Contains("configuration error: PluginHost:StartTimeot: unknown key", text, StringComparison.Ordinal);

        using var good = new TestRoot();
        var (okCode, okText) = await CrmProcess.RunAsync(good.Path, output, "config", "check");
        Assert.Equal(0, okCode);
        Assert.Contains("configuration OK", okText, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Config_check_reports_unknown_sections_plugin_options_missing_plugins_and_an_unwritable_log_folder()
    {
        using var root = new TestRoot(s =>
        {
            s["Mailer"] = new System.Text.Json.Nodes.JsonObject { ["Host"] = "smtp.example.com" };
            s["Plugins"]!["sample.welcom"] = new System.Text.Json.Nodes.JsonObject { ["DueInDays"] = 2 };
            // A file where the log folder should be: not writable, even for root.
            s["NLog"]!["variables"]!["logDirectory"] = "appsettings.json/logs";
        });
        using var crm = CrmProcess.StartWith(new Dictionary<string, string> { ["CRM_Smtp__Port"] = "25", ["Unrelated__Thing"] = "1" },
            root.Path, output, "config", "check", "--Storage:DataDirectory=x", "--Plugins:sample.welcome:DueInDays=-5");
        var code = await crm.WaitForExitAsync(StopBound);
        var text = crm.Output;

        Assert.Equal(2, code);
        Assert.Contains("configuration error: Mailer: unknown section (from " + root.File_("appsettings.json"), text, StringComparison.Ordinal);
        Assert.Contains("configuration error: Storage: unknown section (from the command line", text, StringComparison.Ordinal);
        Assert.Contains("configuration error: Smtp: unknown section (from a CRM_ environment variable", text, StringComparison.Ordinal);
        Assert.DoesNotContain("Unrelated", text, StringComparison.Ordinal);
        Assert.Contains("configuration error: Plugins:sample.welcome:DueInDays: The field DueInDays must be between 0 and 365. (value '-5')", text, StringComparison.Ordinal);
        Assert.Contains("configuration warning: Plugins:sample.welcom: no plugin folder has the id 'sample.welcom' (plugins found: sample.welcome)", text, StringComparison.Ordinal);
        Assert.Contains("configuration error: NLog:variables:logDirectory: the log folder '" + root.File_("appsettings.json/logs") + "' is not writable", text, StringComparison.Ordinal);
        Assert.Contains("5 problem(s) found", text, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Unknown_sections_and_options_for_a_missing_plugin_are_warnings_at_start()
    {
        using var root = new TestRoot(s => s["Plugins"]!["not.installed"] = new System.Text.Json.Nodes.JsonObject { ["X"] = 1 });
        using var crm = CrmProcess.Start(root.Path, output, "--Storage:DataDirectory=x");
        await crm.WaitForReadyAsync();

        Assert.Contains(crm.Lines, l => l.Contains("configuration warning: Storage: unknown section (from the command line", StringComparison.Ordinal));
        Assert.Contains(crm.Lines, l => l.Contains("configuration warning: Plugins:not.installed: no plugin folder has the id 'not.installed'", StringComparison.Ordinal));
        Assert.False(Directory.Exists(root.File_("x")), "an unknown section is ignored");
        crm.Signal(CrmProcess.SIGTERM);
        Assert.Equal(0, await crm.WaitForExitAsync(SignalStopBound));

        // In crm config check the missing plugin stays a warning: the check passes.
        var (okCode, okText) = await CrmProcess.RunAsync(root.Path, output, "config", "check", "--Plugins:sample.welcome:DueInDays=5");
        Assert.Equal(0, okCode);
        Assert.Contains("configuration OK (1 warning(s))", okText, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_second_engine_on_the_same_data_folder_is_refused()
    {
        using var root = new TestRoot();
        using var first = CrmProcess.Start(root.Path, output);
        await first.WaitForReadyAsync();

        var (code, text) = await CrmProcess.RunAsync(root.Path, output, "run");

        Assert.Equal(1, code);
        Assert.Contains("another CrmEngine is already running", text, StringComparison.Ordinal);
        Assert.Contains($"pid {first.Id}", text, StringComparison.Ordinal);
        first.Signal(CrmProcess.SIGTERM);
        Assert.Equal(0, await first.WaitForExitAsync(StopBound));
    }
}
