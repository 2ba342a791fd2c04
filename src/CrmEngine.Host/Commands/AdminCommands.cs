using System.CommandLine;
using System.Globalization;
using CrmEngine.Abstractions.Store;
using CrmEngine.Core;
using CrmEngine.Core.Storage;
using CrmEngine.Host.Configuration;
using CrmEngine.Host.Control;
using CrmEngine.Host.Hosting;
using CrmEngine.PluginHost;
using CrmEngine.Scheduling.Admin;
using Microsoft.Extensions.Configuration;

namespace CrmEngine.Host.Commands;

/// <summary><c>crm plugins list</c>, <c>crm backup</c>, <c>crm restore</c>, <c>crm config check</c>.</summary>
internal static class AdminCommands
{
    public static Command Plugins()
    {
        var plugins = new Command("plugins", "Plugin folders and their states.");
        var list = new Command("list", "Every plugin folder: id, version, state, and the reason for any not Active. Asks the running service; inspects the folders when it is not running.")
        {
            TreatUnmatchedTokensAsErrors = false,
        };
        list.SetAction(async (parse, ct) =>
        {
            var crm = CrmCommandLine.LoadConfiguration(parse);
            var endpoint = ControlEndpoint.From(crm.Root, crm.ContentRoot);
            IReadOnlyList<PluginDto> rows;
            if (endpoint.Enabled && await endpoint.IsListeningAsync(ct))
            {
                using var client = new ControlClient(endpoint, TimeSpan.FromSeconds(30));
                var health = await client.GetAsync<HealthDto>("health", ct);
                rows = health.Plugins;
                Console.WriteLine($"plugins of the running service (pid {health.ProcessId}, {health.Status}):");
            }
            else
            {
                rows = PluginInspector.Inspect(crm.Root, AppContext.BaseDirectory).Select(ControlChannelService.ToDto).ToList();
                var dataDirectory = StoreOptionsOf(crm).DataDirectory;
                Console.WriteLine(InstanceLock.IsHeld(dataDirectory, out var holder)
                    ? $"plugins found (inspected: the service runs{holder} but its control channel is off, Active means it would start):"
                    : "plugins found (inspected; the service is not running, Active means it would start):");
            }

            Print(rows);
            return ExitCodes.Ok;
        });
        plugins.Subcommands.Add(list);
        return plugins;
    }

    internal static void Print(IReadOnlyList<PluginDto> rows)
    {
        if (rows.Count == 0)
        {
            Console.WriteLine("  (no plugin folders)");
            return;
        }

        var idWidth = Math.Max(2, rows.Max(r => r.Id.Length));
        var versionWidth = Math.Max(7, rows.Max(r => (r.Version ?? "?").Length));
        var stateWidth = Math.Max(5, rows.Max(r => r.State.Length));
        Console.WriteLine($"  {"ID".PadRight(idWidth)}  {"VERSION".PadRight(versionWidth)}  {"STATE".PadRight(stateWidth)}  REASON");
        foreach (var r in rows)
        {
            Console.WriteLine($"  {r.Id.PadRight(idWidth)}  {(r.Version ?? "?").PadRight(versionWidth)}  {r.State.PadRight(stateWidth)}  {r.Reason ?? ""}".TrimEnd());
        }
    }

    public static Command Backup()
    {
        var file = new Argument<string>("file") { Description = "The backup file to write (must not exist)." };
        var backup = new Command("backup", "Writes a consistent copy of the database: through the running service when it runs, else directly.")
        {
            file,
        };
        backup.TreatUnmatchedTokensAsErrors = false;
        backup.SetAction(async (parse, ct) =>
        {
            var target = Path.GetFullPath(parse.GetValue(file)!);
            var crm = CrmCommandLine.LoadConfiguration(parse);
            if (File.Exists(target) || Directory.Exists(target))
            {
                throw new CommandRefusedException($"refusing to overwrite {target}: choose a new file name.");
            }

            var endpoint = ControlEndpoint.From(crm.Root, crm.ContentRoot);
            if (endpoint.Enabled && await endpoint.IsListeningAsync(ct))
            {
                using var client = new ControlClient(endpoint);
                var result = await client.PostAsync<BackupRequest, BackupResult>("backup", new BackupRequest(target), ct);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"backup written by the running service: {result.Path} ({result.Bytes:N0} bytes)"));
                return ExitCodes.Ok;
            }

            var store = StoreOptionsOf(crm);
            var live = CrmDatabase.ResolveFilePath(store, crm.ContentRoot);
            if (!File.Exists(live))
            {
                throw new CommandRefusedException($"no database at {live}: nothing to back up (check Store:DataDirectory and --content-root).");
            }

            if (InstanceLock.IsHeld(store.DataDirectory, out var holder) || CrmDatabase.IsInUse(live))
            {
                throw new CommandRefusedException($"the database {live} is in use by another process{holder} but no service answers on {endpoint}; " +
                                                  "enable the control channel (Host:ControlEnabled=true) or stop that process.");
            }

            try
            {
                using (var db = new CrmDatabase(store))
                {
                    await db.BackupAsync(target, ct);
                }

                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"backup written (service not running, database opened directly): {target} ({new FileInfo(target).Length:N0} bytes)"));
                return ExitCodes.Ok;
            }
            catch (Exception ex) when (ex is StoreException or IOException or UnauthorizedAccessException)
            {
                throw new CommandRefusedException($"backup failed: {ex.Message}");
            }
        });
        return backup;
    }

    public static Command Restore()
    {
        var file = new Argument<string>("file") { Description = "A backup written by `crm backup`." };
        var restore = new Command("restore", "Replaces the database with a backup. Only while the service is stopped; the previous file is kept beside it.")
        {
            file,
        };
        restore.TreatUnmatchedTokensAsErrors = false;
        restore.SetAction(async (parse, ct) =>
        {
            var source = Path.GetFullPath(parse.GetValue(file)!);
            var crm = CrmCommandLine.LoadConfiguration(parse);
            if (!File.Exists(source))
            {
                throw new CommandRefusedException($"cannot restore: the backup file {source} does not exist.");
            }

            var endpoint = ControlEndpoint.From(crm.Root, crm.ContentRoot);
            if (endpoint.Enabled && await endpoint.IsListeningAsync(ct))
            {
                throw new CommandRefusedException($"cannot restore while the service is running (it answers on {endpoint}); stop it first (systemctl stop crm, or Ctrl+C), then run the restore again.");
            }

            var store = StoreOptionsOf(crm);
            if (InstanceLock.IsHeld(store.DataDirectory, out var holder))
            {
                throw new CommandRefusedException($"cannot restore while the service is running on {store.DataDirectory}{holder}; stop it first (systemctl stop crm, or Ctrl+C), then run the restore again.");
            }

            try
            {
                var previous = CrmDatabase.Restore(source, store, crm.ContentRoot);
                Console.WriteLine($"restored {CrmDatabase.ResolveFilePath(store, crm.ContentRoot)} from {source}");
                if (previous is not null)
                {
                    Console.WriteLine($"the previous database was kept as {previous}");
                }

                return ExitCodes.Ok;
            }
            catch (Exception ex) when (ex is StoreException or IOException or UnauthorizedAccessException)
            {
                throw new CommandRefusedException(ex.Message.StartsWith("Cannot restore", StringComparison.Ordinal) ? ex.Message : $"cannot restore: {ex.Message}");
            }
        });
        return restore;
    }

    public static Command Config()
    {
        var config = new Command("config", "Configuration tools.");
        var check = new Command("check", "Validates the configuration (appsettings.json, appsettings.{Environment}.json, environment, overrides) and names every bad key.")
        {
            TreatUnmatchedTokensAsErrors = false,
        };
        check.SetAction(parse =>
        {
            var crm = CrmCommandLine.LoadConfiguration(parse);
            // Plugins are looked for where the engine looks (relative plugin folders: the binary's folder), and
            // their options are validated through the plugin inspector as the engine does when it starts them.
            var problems = ConfigChecker.Check(crm.Root, crm.ContentRoot, AppContext.BaseDirectory, checkPluginOptions: true);
            var files = new[] { CrmConfiguration.SettingsFile, $"appsettings.{crm.EnvironmentName}.json" }
                .Where(f => File.Exists(Path.Combine(crm.ContentRoot, f)));
            Console.WriteLine($"content root {crm.ContentRoot}, environment {crm.EnvironmentName}, files: {string.Join(", ", files.DefaultIfEmpty("(none)"))}");
            var errors = problems.Count(p => ConfigChecker.IsError(p, atStart: false));
            if (problems.Count > errors)
            {
                Console.Error.WriteLine(ConfigChecker.Format(problems.Where(p => !ConfigChecker.IsError(p, atStart: false))));
            }

            if (errors == 0)
            {
                Console.WriteLine(problems.Count == 0 ? "configuration OK" : $"configuration OK ({problems.Count} warning(s))");
                return ExitCodes.Ok;
            }

            Console.Error.WriteLine(ConfigChecker.Format(problems.Where(p => ConfigChecker.IsError(p, atStart: false))));
            Console.Error.WriteLine($"{errors} problem(s) found");
            return ExitCodes.Usage;
        });
        config.Subcommands.Add(check);
        return config;
    }

    /// <summary><c>crm status</c>: the running service's health, with the scheduler's figures.</summary>
    public static Command Status()
    {
        var status = new Command("status", "Health of the running service: status, database, plugins, and the scheduler (jobs due, running, parked, oldest overdue).")
        {
            TreatUnmatchedTokensAsErrors = false,
        };
        status.SetAction(async (parse, ct) =>
        {
            var crm = CrmCommandLine.LoadConfiguration(parse);
            var endpoint = ControlEndpoint.From(crm.Root, crm.ContentRoot);
            if (!endpoint.Enabled || !await endpoint.IsListeningAsync(ct))
            {
                throw new CommandRefusedException(InstanceLock.IsHeld(StoreOptionsOf(crm).DataDirectory, out var holder)
                    ? $"the service runs{holder} but its control channel is off (Host:ControlEnabled=false); no health to show."
                    : $"the service is not running (no answer on {endpoint}).");
            }

            using var client = new ControlClient(endpoint, TimeSpan.FromSeconds(30));
            var health = await client.GetAsync<HealthDto>("health", ct);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{health.Status}: pid {health.ProcessId}, version {health.Version}, started {health.StartedAt.UtcDateTime:yyyy-MM-dd HH:mm:ss} UTC, environment {health.Environment}"));
            Console.WriteLine($"database {health.Database}, last change {health.LastChangeSequence.ToString(CultureInfo.InvariantCulture)}");
            Console.WriteLine(health.Scheduler is { } scheduler ? SchedulingText.Health(scheduler) : "scheduler: not running");
            Print(health.Plugins);
            return ExitCodes.Ok;
        });
        return status;
    }

    /// <summary>Store options with the data folder made absolute against the content root.</summary>
    internal static StoreOptions StoreOptionsOf(CrmConfiguration crm)
    {
        var store = new StoreOptions();
        crm.Root.GetSection(StoreOptions.Section).Bind(store);
        store.DataDirectory = Path.GetFullPath(store.DataDirectory, crm.ContentRoot);
        return store;
    }
}
