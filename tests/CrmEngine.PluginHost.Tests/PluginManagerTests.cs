using Microsoft.Extensions.Configuration;
using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Pipeline;
using CrmEngine.Abstractions.Plugins;
using Microsoft.Extensions.Logging;

namespace CrmEngine.PluginHost.Tests;

/// <summary>The manager against real fixture plugin folders on disk, with fake core seams.</summary>
public sealed class PluginManagerTests : IDisposable
{
    private readonly PluginFolders _folders = new();

    public void Dispose() => _folders.Dispose();

    private Dictionary<string, string?> ValidSettings(string log) => new()
    {
        ["Plugins:fixture.valid:CallLog"] = log,
        ["Plugins:fixture.valid:Greeting"] = "bonjour",
        ["Plugins:fixture.valid:Level"] = "7",
    };

    [Fact]
    public async Task A_valid_plugin_is_installed_started_and_stopped_with_its_options_handlers_and_worker()
    {
        _folders.AddBuilt("Fixture.Valid");
        var log = _folders.File1("valid.log");
        await using (var h = new Harness(_folders, ValidSettings(log)))
        {
            await h.StartAsync();

            var info = h.Plugin("fixture.valid");
            Assert.Equal(PluginState.Active, info.State);
            Assert.Null(info.Reason);
            Assert.Equal("1.2.0", info.Version);
            Assert.Equal("Fixture.Valid (test fixture)", info.Name);
            Assert.Equal(Path.Combine(_folders.Plugins, "Fixture.Valid"), info.Folder);

            Assert.Equal(["install fixture.valid", "start fixture.valid 1.2.0 greeting=bonjour level=7 store=True"],
                PluginFolders.ReadLines(log).Where(l => !l.StartsWith("worker", StringComparison.Ordinal)));
            Assert.Equal("1.2.0", h.Installed.Versions["fixture.valid"]);
            Assert.Contains(("plugin:fixture.valid", "fixture.valid"), h.Stores.Requests);
            await Eventually.TrueAsync(() => PluginFolders.ReadLines(log).Contains("worker running"), "the worker runs");

            var reg = Assert.Single(h.Registry.Registrations);
            Assert.Equal(("fixture.valid", "customer", PipelineStage.PreOperation, 5, "fixture.valid:CustomerNameHandler"),
                (reg.OwnerId, reg.EntityName, reg.Stage, reg.Order, reg.HandlerName));

            var customer = new Customer { Id = "c1", Name = "Ada" };
            Assert.Equal(0, await h.Registry.DeliverCreateAsync(EntityNames.Customer, PipelineStage.PreOperation, customer, h.Breaker));
            Assert.Equal(["bonjour"], customer.Tags);
            Assert.Contains("handled c1 by user:test", PluginFolders.ReadLines(log));

            await h.Manager.StopAsync(CancellationToken.None);
            Assert.Empty(h.Registry.Registrations);
        }

        Assert.Equal("stop fixture.valid", PluginFolders.ReadLines(log)[^1]);
    }

    [Fact]
    public async Task Migrate_runs_when_the_installed_version_differs_and_nothing_runs_when_it_is_current()
    {
        _folders.AddBuilt("Fixture.Valid");
        var log = _folders.File1("valid.log");
        await using (var h = new Harness(_folders, ValidSettings(log)))
        {
            h.Installed.Versions["fixture.valid"] = "1.0.0";
            await h.StartAsync();
            Assert.Equal(PluginState.Active, h.Plugin("fixture.valid").State);
            Assert.Equal("1.2.0", h.Installed.Versions["fixture.valid"]);
        }

        var lines = PluginFolders.ReadLines(log);
        Assert.Equal("migrate fixture.valid from 1.0.0", lines[0]);
        Assert.DoesNotContain(lines, l => l.StartsWith("install", StringComparison.Ordinal));

        File.Delete(log);
        await using (var h = new Harness(_folders, ValidSettings(log)))
        {
            h.Installed.Versions["fixture.valid"] = "1.2.0";
            await h.StartAsync();
        }

        lines = PluginFolders.ReadLines(log);
        Assert.DoesNotContain(lines, l => l.StartsWith("install", StringComparison.Ordinal) || l.StartsWith("migrate", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("start fixture.valid", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Plugins_start_in_dependency_order_and_stop_in_reverse()
    {
        _folders.AddBuilt("Fixture.Valid");
        _folders.AddManifestFixture("needs-valid");
        var log = _folders.File1("both.log");
        var settings = ValidSettings(log);
        settings["Plugins:fixture.dependent:CallLog"] = log;
        await using (var h = new Harness(_folders, settings))
        {
            await h.StartAsync();
            Assert.Equal(["fixture.valid", "fixture.dependent"], h.Manager.Plugins.Select(p => p.Id));
            Assert.All(h.Manager.Plugins, p => Assert.Equal(PluginState.Active, p.State));
        }

        var lines = PluginFolders.ReadLines(log).Where(l => l.StartsWith("start", StringComparison.Ordinal) || l.StartsWith("stop", StringComparison.Ordinal))
            .Select(l => string.Join(' ', l.Split(' ').Take(2)));
        Assert.Equal(["start fixture.valid", "start fixture.dependent", "stop fixture.dependent", "stop fixture.valid"], lines);
    }

    [Fact]
    public async Task A_stop_that_hangs_is_abandoned_after_the_stop_timeout_and_the_others_still_stop()
    {
        _folders.AddBuilt("Fixture.Valid");
        _folders.AddManifestFixture("needs-valid");
        var log = _folders.File1("both.log");
        var settings = ValidSettings(log);
        settings["Plugins:fixture.dependent:CallLog"] = log;
        settings["Plugins:fixture.dependent:HangOnStop"] = "true";
        await using var h = new Harness(_folders, settings, o => o.StopTimeout = TimeSpan.FromMilliseconds(200));
        await h.StartAsync();

        var stopping = h.Manager.StopAsync(CancellationToken.None);
        Assert.Same(stopping, await Task.WhenAny(stopping, Task.Delay(TimeSpan.FromSeconds(20))));
        var lines = PluginFolders.ReadLines(log);
        Assert.Contains("stop fixture.dependent", lines);
        Assert.Contains("stop fixture.valid", lines);
        Assert.Contains(h.Logs.Messages, m => m.Contains("fixture.dependent", StringComparison.Ordinal)
                                              && m.Contains("StopAsync did not finish within 200 ms and was abandoned", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_plugin_that_throws_in_ConfigureServices_is_malfunctioned_and_never_started()
    {
        _folders.AddBuilt("Fixture.Valid");
        var log = _folders.File1("v.log");
        var settings = ValidSettings(log);
        settings["Plugins:fixture.valid:ThrowInConfigure"] = "true";
        await using var h = new Harness(_folders, settings);
        await h.StartAsync();

        var info = h.Plugin("fixture.valid");
        Assert.Equal((PluginState.Malfunctioned, "ConfigureServices threw InvalidOperationException: the fixture cannot configure itself"),
            (info.State, info.Reason));
        Assert.Empty(PluginFolders.ReadLines(log));
        Assert.Empty(h.Registry.Registrations);
        Assert.False(h.Installed.Versions.ContainsKey("fixture.valid"));
    }

    [Fact]
    public async Task A_plugin_that_throws_on_start_is_malfunctioned_and_the_others_start()
    {
        _folders.AddBuilt("Fixture.Valid");
        _folders.AddBuilt("Fixture.ThrowsOnStart");
        await using var h = new Harness(_folders, ValidSettings(_folders.File1("v.log")));
        await h.StartAsync();

        var bad = h.Plugin("fixture.throws");
        Assert.Equal(PluginState.Malfunctioned, bad.State);
        Assert.Equal("StartAsync threw InvalidOperationException: the fixture refuses to start", bad.Reason);
        Assert.Equal(PluginState.Active, h.Plugin("fixture.valid").State);
    }

    [Fact]
    public async Task A_plugin_that_hangs_on_start_is_abandoned_after_the_timeout_and_logged_with_its_id()
    {
        _folders.AddBuilt("Fixture.Valid");
        _folders.AddBuilt("Fixture.HangsOnStart");
        await using var h = new Harness(_folders, ValidSettings(_folders.File1("v.log")),
            o => o.StartTimeout = TimeSpan.FromSeconds(2));
        await h.StartAsync();

        var hung = h.Plugin("fixture.hangs");
        Assert.Equal(PluginState.Malfunctioned, hung.State);
        Assert.Equal("StartAsync did not finish within 2 s and was abandoned", hung.Reason);
        Assert.Equal(PluginState.Active, h.Plugin("fixture.valid").State);
        Assert.Contains(h.Logs.Entries, e => e.Level == LogLevel.Error && e.Message.Contains("fixture.hangs", StringComparison.Ordinal)
                                             && e.Message.Contains("abandoned", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Unsupported_sdk_missing_dependency_and_cycle_are_refused_with_reasons_and_the_rest_starts()
    {
        _folders.AddBuilt("Fixture.Valid");
        _folders.AddBuilt("Fixture.UnsupportedSdk");
        _folders.AddBuilt("Fixture.MissingDependency");
        _folders.AddBuilt("Fixture.CycleA");
        _folders.AddBuilt("Fixture.CycleB");
        await using var h = new Harness(_folders, ValidSettings(_folders.File1("v.log")));
        await h.StartAsync();

        Assert.Equal(PluginState.Active, h.Plugin("fixture.valid").State);
        var sdk = h.Plugin("fixture.future");
        Assert.Equal((PluginState.NotSupported, "supports SDK 2.0.0 .. 2 but this engine has SDK 1.1.0"), (sdk.State, sdk.Reason));
        var orphan = h.Plugin("fixture.orphan");
        Assert.Equal((PluginState.NotSupported, "dependency fixture.nowhere (1.0.0 .. 1) is missing"), (orphan.State, orphan.Reason));
        foreach (var id in new[] { "fixture.cycle-a", "fixture.cycle-b" })
        {
            var c = h.Plugin(id);
            Assert.Equal(PluginState.NotSupported, c.State);
            Assert.Equal("dependency cycle: fixture.cycle-a -> fixture.cycle-b -> fixture.cycle-a", c.Reason);
        }

        // Exactly one log line per plugin folder, each naming id, version and state.
        var lines = h.Logs.Entries.Where(e => e.Category == typeof(PluginManager).FullName && e.Message.StartsWith("Plugin ", StringComparison.Ordinal))
            .Select(e => e.Message).ToList();
        Assert.Equal(5, lines.Count);
        Assert.Contains("Plugin fixture.valid 1.2.0 Active", lines);
        Assert.Contains("Plugin fixture.future 1.0.0 NotSupported: supports SDK 2.0.0 .. 2 but this engine has SDK 1.1.0", lines);
    }

    [Fact]
    public async Task A_disabled_plugin_is_not_loaded_and_its_dependents_are_disabled()
    {
        _folders.AddBuilt("Fixture.Valid");
        _folders.AddManifestFixture("needs-valid");
        var log = _folders.File1("v.log");
        var settings = ValidSettings(log);
        settings["Plugins:fixture.valid:Enabled"] = "false";
        await using var h = new Harness(_folders, settings);
        await h.StartAsync();

        Assert.Equal((PluginState.Disabled, "disabled in configuration (Plugins:fixture.valid:Enabled = false)"),
            (h.Plugin("fixture.valid").State, h.Plugin("fixture.valid").Reason));
        Assert.Equal((PluginState.Disabled, "dependency fixture.valid is not active (Disabled)"),
            (h.Plugin("fixture.dependent").State, h.Plugin("fixture.dependent").Reason));
        Assert.Empty(PluginFolders.ReadLines(log));
        Assert.Empty(h.Registry.Registrations);
    }

    [Fact]
    public async Task A_plugin_depending_on_one_that_failed_to_start_is_not_started()
    {
        _folders.AddBuilt("Fixture.ThrowsOnStart");
        _folders.AddWithManifest("dependent", """
            { "id": "fixture.dependent", "version": "1.0.0", "sdk": { "min": "1.0", "max": "1" },
              "dependencies": [ { "id": "fixture.throws", "min": "1.0.0" } ], "entryAssembly": "Fixture.Valid.dll" }
            """);
        var log = _folders.File1("d.log");
        await using var h = new Harness(_folders, new() { ["Plugins:fixture.dependent:CallLog"] = log });
        await h.StartAsync();

        Assert.Equal(PluginState.Malfunctioned, h.Plugin("fixture.throws").State);
        Assert.Equal((PluginState.Disabled, "dependency fixture.throws is not active (Malfunctioned)"),
            (h.Plugin("fixture.dependent").State, h.Plugin("fixture.dependent").Reason));
        Assert.Empty(PluginFolders.ReadLines(log));
    }

    [Fact]
    public async Task Invalid_options_refuse_the_plugin_naming_the_section_and_member()
    {
        _folders.AddBuilt("Fixture.Valid");
        var log = _folders.File1("v.log");
        var settings = ValidSettings(log);
        settings["Plugins:fixture.valid:Level"] = "50";
        await using var h = new Harness(_folders, settings);
        await h.StartAsync();

        var info = h.Plugin("fixture.valid");
        Assert.Equal(PluginState.NotSupported, info.State);
        Assert.StartsWith("invalid options in Plugins:fixture.valid:", info.Reason, StringComparison.Ordinal);
        Assert.Contains("Level", info.Reason, StringComparison.Ordinal);
        Assert.Empty(PluginFolders.ReadLines(log));
    }

    [Fact]
    public async Task An_entry_assembly_without_a_plugin_class_or_missing_is_not_supported()
    {
        var noPlugin = Path.Combine(_folders.Plugins, "no-plugin");
        Directory.CreateDirectory(noPlugin);
        File.Copy(typeof(Assert).Assembly.Location, Path.Combine(noPlugin, "xunit.assert.dll"));
        File.WriteAllText(Path.Combine(noPlugin, "plugin.json"), """
            { "id": "fixture.noplugin", "version": "1.0.0", "sdk": { "min": "1.0", "max": "1" }, "entryAssembly": "xunit.assert.dll" }
            """);
        _folders.AddWithManifest("missing-entry", """
            { "id": "fixture.noentry", "version": "1.0.0", "sdk": { "min": "1.0", "max": "1" }, "entryAssembly": "Nowhere.dll" }
            """);
        await using var h = new Harness(_folders);
        await h.StartAsync();

        Assert.Equal((PluginState.NotSupported, "no CrmPlugin subclass in xunit.assert.dll"),
            (h.Plugin("fixture.noplugin").State, h.Plugin("fixture.noplugin").Reason));
        Assert.Equal(PluginState.NotSupported, h.Plugin("fixture.noentry").State);
        Assert.StartsWith("entry assembly Nowhere.dll not found in", h.Plugin("fixture.noentry").Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_handler_that_keeps_throwing_marks_the_plugin_malfunctioned_unregisters_it_and_stops_it()
    {
        _folders.AddBuilt("Fixture.Valid");
        _folders.AddBuilt("Fixture.FaultyHandler");
        var faultyLog = _folders.File1("faulty.log");
        var settings = ValidSettings(_folders.File1("v.log"));
        settings["Plugins:fixture.faulty:CallLog"] = faultyLog;
        await using var h = new Harness(_folders, settings, o => o.FailureThreshold = 5);
        await h.StartAsync();
        Assert.Equal(PluginState.Active, h.Plugin("fixture.faulty").State);

        for (var i = 1; i <= 4; i++)
        {
            Assert.Equal(1, await h.Registry.DeliverCreateAsync(EntityNames.Customer, PipelineStage.Async, new Customer { Id = "c" + i }, h.Breaker));
        }

        Assert.Equal(PluginState.Active, h.Plugin("fixture.faulty").State);
        Assert.Equal(4, h.Breaker.FailureCount("fixture.faulty"));

        await h.Registry.DeliverCreateAsync(EntityNames.Customer, PipelineStage.Async, new Customer { Id = "c5" }, h.Breaker);
        var info = h.Plugin("fixture.faulty");
        Assert.Equal(PluginState.Malfunctioned, info.State);
        Assert.Equal("5 failures within 00:05:00; last: handler fixture.faulty:AlwaysThrowsHandler threw InvalidOperationException: the fixture handler always fails",
            info.Reason);
        // An async delivery racing with the stop is neither run nor counted as a failure: the plugin answers
        // "unavailable" (kept pending by the dispatcher) until the registration goes away with the stop.
        // (Whether the registration is still there at this instant is a race, so KeptPending is 0 or 1.)
        Assert.Equal(0, await h.Registry.DeliverCreateAsync(EntityNames.Customer, PipelineStage.Async, new Customer { Id = "c6" }, h.Breaker));
        Assert.InRange(h.Registry.KeptPending, 0, 1);
        await Eventually.TrueAsync(() => h.Registry.Registrations.All(r => r.OwnerId != "fixture.faulty"), "its handler is unregistered");
        await Eventually.TrueAsync(() => PluginFolders.ReadLines(faultyLog).Contains("stop"), "the malfunctioned plugin is stopped");

        // The other plugin and its handler go on.
        Assert.Equal(PluginState.Active, h.Plugin("fixture.valid").State);
        Assert.Single(h.Registry.Registrations);
    }

    [Fact]
    public async Task Handler_time_outs_count_and_failures_outside_the_window_do_not()
    {
        _folders.AddBuilt("Fixture.FaultyHandler");
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(DateTimeOffset.Parse("2026-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        await using var h = new Harness(_folders, null, o =>
        {
            o.FailureThreshold = 3;
            o.FailureWindow = TimeSpan.FromMinutes(1);
        }, time);
        await h.StartAsync();

        h.Breaker.OnHandlerFailed("fixture.faulty", "fixture.faulty:AlwaysThrowsHandler", new TimeoutException());
        h.Breaker.OnHandlerFailed("fixture.faulty", "fixture.faulty:AlwaysThrowsHandler", new TimeoutException());
        time.Advance(TimeSpan.FromMinutes(2));
        h.Breaker.OnHandlerFailed("fixture.faulty", "fixture.faulty:AlwaysThrowsHandler", new TimeoutException());
        Assert.Equal(PluginState.Active, h.Plugin("fixture.faulty").State);
        h.Breaker.OnHandlerFailed("core", "core:x", new InvalidOperationException("not a plugin"));

        h.Breaker.OnHandlerFailed("fixture.faulty", "fixture.faulty:AlwaysThrowsHandler", new TimeoutException());
        h.Breaker.OnHandlerFailed("fixture.faulty", "fixture.faulty:AlwaysThrowsHandler", new TimeoutException());
        var info = h.Plugin("fixture.faulty");
        Assert.Equal(PluginState.Malfunctioned, info.State);
        Assert.Equal("3 failures within 00:01:00; last: handler fixture.faulty:AlwaysThrowsHandler timed out", info.Reason);
    }

    [Fact]
    public async Task A_worker_that_keeps_crashing_is_restarted_with_backoff_then_marks_the_plugin_malfunctioned()
    {
        _folders.AddBuilt("Fixture.FaultyHandler");
        await using var h = new Harness(_folders, new() { ["Plugins:fixture.faulty:CrashWorker"] = "true" }, o =>
        {
            o.FailureThreshold = 3;
            o.WorkerRestartDelay = TimeSpan.FromMilliseconds(10);
        });
        await h.StartAsync();

        await Eventually.TrueAsync(() => h.Plugin("fixture.faulty").State == PluginState.Malfunctioned, "the breaker trips");
        Assert.Equal("3 failures within 00:05:00; last: worker CrashingWorker threw InvalidOperationException: the fixture worker crashed",
            h.Plugin("fixture.faulty").Reason);
        await Eventually.TrueAsync(() => h.Registry.Registrations.Count == 0, "its handler is unregistered");
    }

    [Fact]
    public async Task Workers_start_only_after_every_plugin_has_registered_its_handlers()
    {
        // fixture.faulty starts first (ties by id); its worker fails (and logs it) as soon as it runs. A worker that
        // writes at once must not get ahead of fixture.valid's handlers: an async handler registered after a write
        // never gets a delivery for it.
        _folders.AddBuilt("Fixture.FaultyHandler");
        _folders.AddBuilt("Fixture.Valid");
        var settings = ValidSettings(_folders.File1("valid.log"));
        settings["Plugins:fixture.faulty:CrashWorker"] = "true";
        await using var h = new Harness(_folders, settings, o => o.WorkerRestartDelay = TimeSpan.FromMinutes(5));
        static bool WorkerRan(Harness harness) =>
            harness.Logs.Messages.Any(m => m.Contains("worker CrashingWorker threw", StringComparison.Ordinal));
        bool? workerRanBeforeValidRegistered = null;
        h.Registry.Registering = r =>
        {
            if (r.OwnerId == "fixture.valid")
            {
                // Gives a worker started too early every chance to show itself.
                workerRanBeforeValidRegistered = SpinWait.SpinUntil(() => WorkerRan(h), TimeSpan.FromSeconds(1));
            }
        };

        await h.StartAsync();

        Assert.Equal(PluginState.Active, h.Plugin("fixture.faulty").State);
        Assert.Equal(PluginState.Active, h.Plugin("fixture.valid").State);
        Assert.False(workerRanBeforeValidRegistered, "a worker ran before a later plugin's handlers were registered");
        await Eventually.TrueAsync(() => WorkerRan(h), "the worker runs once every plugin has started");
    }

    [Fact]
    public async Task The_sample_welcome_plugin_adds_a_welcome_task_due_in_the_configured_days()
    {
        _folders.AddBuilt("sample.welcome");
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(DateTimeOffset.Parse("2026-03-01T09:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        await using var h = new Harness(_folders, new() { ["Plugins:sample.welcome:DueInDays"] = "7" }, time: time);
        await h.StartAsync();
        Assert.Equal(PluginState.Active, h.Plugin("sample.welcome").State);

        var customer = new Customer { Id = "cust-1", Name = "Acme Ltd", Owner = "rep.anna" };
        Assert.Equal(0, await h.Registry.DeliverCreateAsync(EntityNames.Customer, PipelineStage.Async, customer, h.Breaker));
        // Delivered twice (at least once semantics): still one welcome task.
        Assert.Equal(0, await h.Registry.DeliverCreateAsync(EntityNames.Customer, PipelineStage.Async, customer, h.Breaker));

        var activity = Assert.Single(h.Stores.Store.ActivitySet.All);
        Assert.Equal(("cust-1", ActivityType.Task, "Welcome", "rep.anna"), (activity.CustomerId, activity.Type, activity.Subject, activity.Owner));
        Assert.Equal(time.GetUtcNow().AddDays(7), activity.DueAt);
    }

    [Fact]
    public async Task Inspect_evaluates_folders_without_starting_anything()
    {
        _folders.AddBuilt("Fixture.Valid");
        _folders.AddBuilt("Fixture.ThrowsOnStart");
        _folders.AddBuilt("Fixture.UnsupportedSdk");
        var noPlugin = Path.Combine(_folders.Plugins, "no-plugin");
        Directory.CreateDirectory(noPlugin);
        File.Copy(typeof(Assert).Assembly.Location, Path.Combine(noPlugin, "xunit.assert.dll"));
        File.WriteAllText(Path.Combine(noPlugin, "plugin.json"), """
            { "id": "fixture.noplugin", "version": "1.0.0", "sdk": { "min": "1.0", "max": "1" }, "entryAssembly": "xunit.assert.dll" }
            """);
        var log = _folders.File1("v.log");

        var config = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["PluginHost:Directories:0"] = "plugins",
            ["Plugins:fixture.valid:CallLog"] = log,
        }).Build();
        var list = PluginInspector.Inspect(config, _folders.Root);

        Assert.Equal(4, list.Count);
        Assert.Equal(PluginState.Active, list.Single(p => p.Id == "fixture.valid").State);
        Assert.Equal(PluginState.Active, list.Single(p => p.Id == "fixture.throws").State);
        Assert.Equal(PluginState.NotSupported, list.Single(p => p.Id == "fixture.future").State);
        Assert.Equal("no CrmPlugin subclass in xunit.assert.dll", list.Single(p => p.Id == "fixture.noplugin").Reason);
        Assert.Empty(PluginFolders.ReadLines(log));
        await Task.CompletedTask;
    }
}
