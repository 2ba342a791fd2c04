using System.CommandLine;
using CrmEngine.Host.Configuration;
using CrmEngine.Host.Service;
using Microsoft.Extensions.Configuration;

namespace CrmEngine.Host.Commands;

/// <summary><c>crm service install | uninstall</c>.</summary>
internal static class ServiceCommands
{
    public static Command Build()
    {
        var service = new Command("service", "Installs or removes CrmEngine as a system service (systemd unit on Linux, Windows service).");

        var unitPath = new Option<string?>("--unit-path")
        {
            Description = $"Write the systemd unit to this file instead of {ServiceInstaller.SystemdDirectory}/<name>.service (Linux).",
        };
        var name = new Option<string>("--name")
        {
            Description = "Service name.",
            DefaultValueFactory = _ => ServiceInstaller.DefaultName,
        };
        var user = new Option<string?>("--user")
        {
            Description = "Account the service runs as (User= of the unit). Default: the invoking user (SUDO_USER when run with sudo).",
        };
        var workingDirectory = new Option<string?>("--working-directory")
        {
            Description = "Folder the service runs in (its content root: appsettings.json, data/, logs/). Default: the current content root.",
        };

        var install = new Command("install", "Writes the systemd unit (Type=notify) and reloads systemd, or registers the Windows service.")
        {
            unitPath, name, user, workingDirectory,
        };
        install.SetAction(parse =>
        {
            var serviceName = parse.GetValue(name) ?? ServiceInstaller.DefaultName;
            ServiceInstaller.CheckName(serviceName);
            var crm = CrmCommandLine.LoadConfiguration(parse);
            // The same rule as at start: only what would stop the engine refuses the install.
            var problems = ConfigChecker.Check(crm.Root, crm.ContentRoot).Where(p => ConfigChecker.IsError(p, atStart: true)).ToList();
            if (problems.Count > 0)
            {
                throw new CommandRefusedException(ConfigChecker.Format(problems, atStart: true) + Environment.NewLine +
                                                  "fix the configuration before installing the service (crm config check).", ExitCodes.Usage);
            }

            var hostOptions = new CrmHostOptions();
            crm.Root.GetSection(CrmHostOptions.Section).Bind(hostOptions);

            var wd = parse.GetValue(workingDirectory) is { } w ? Path.GetFullPath(w) : crm.ContentRoot;
            if (!Directory.Exists(wd))
            {
                throw new CommandRefusedException($"--working-directory: the folder '{wd}' does not exist.", ExitCodes.Usage);
            }

            var (exe, args) = ServiceInstaller.CurrentCommand();
            var account = parse.GetValue(user) ?? DefaultUser();
            var spec = new ServiceSpec(serviceName, exe, args, wd, account, hostOptions.ShutdownTimeout, crm.EnvironmentName);
            var lines = OperatingSystem.IsWindows() && parse.GetValue(unitPath) is null
                ? ServiceInstaller.InstallWindows(spec)
                : ServiceInstaller.InstallSystemd(spec, parse.GetValue(unitPath));
            foreach (var line in lines)
            {
                Console.WriteLine(line);
            }

            return ExitCodes.Ok;
        });

        var uninstall = new Command("uninstall", "Stops and removes the systemd unit (or the Windows service).")
        {
            unitPath, name,
        };
        uninstall.SetAction(parse =>
        {
            var serviceName = parse.GetValue(name) ?? ServiceInstaller.DefaultName;
            ServiceInstaller.CheckName(serviceName);
            var lines = OperatingSystem.IsWindows() && parse.GetValue(unitPath) is null
                ? ServiceInstaller.UninstallWindows(serviceName)
                : ServiceInstaller.UninstallSystemd(serviceName, parse.GetValue(unitPath));
            foreach (var line in lines)
            {
                Console.WriteLine(line);
            }

            return ExitCodes.Ok;
        });

        service.Subcommands.Add(install);
        service.Subcommands.Add(uninstall);
        return service;
    }

    private static string? DefaultUser()
    {
        if (OperatingSystem.IsWindows())
        {
            return null;
        }

        var sudo = Environment.GetEnvironmentVariable("SUDO_USER");
        return string.IsNullOrWhiteSpace(sudo) ? Environment.UserName : sudo;
    }
}
