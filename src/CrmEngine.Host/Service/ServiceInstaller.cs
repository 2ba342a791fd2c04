using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace CrmEngine.Host.Service;

/// <summary>What goes into the systemd unit / the Windows service registration.</summary>
internal sealed record ServiceSpec(
    string Name,
    string Executable,
    IReadOnlyList<string> Arguments,
    string WorkingDirectory,
    string? User,
    TimeSpan ShutdownTimeout,
    string EnvironmentName);

/// <summary>Writes and removes the systemd unit; registers and deletes the Windows service.</summary>
internal static partial class ServiceInstaller
{
    public const string DefaultName = "crm";
    public const string SystemdDirectory = "/etc/systemd/system";

    [GeneratedRegex(@"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,100}$")]
    private static partial Regex ValidName();

    public static void CheckName(string name)
    {
        if (!ValidName().IsMatch(name))
        {
            throw new CommandRefusedException($"--name: '{name}' is not a valid service name (letters, digits, '.', '_', '-', '@').", ExitCodes.Usage);
        }
    }

    /// <summary>
    /// The command that starts this same binary: the apphost (<c>crm</c>) when it was started that way,
    /// else <c>dotnet crm.dll</c> with the dotnet that runs it now.
    /// </summary>
    public static (string Executable, IReadOnlyList<string> Arguments) CurrentCommand()
    {
        var process = Environment.ProcessPath ?? throw new CommandRefusedException("cannot tell the path of the running binary.");
        var dll = Path.Combine(AppContext.BaseDirectory, "crm.dll");
        if (string.Equals(Path.GetFileNameWithoutExtension(process), "dotnet", StringComparison.OrdinalIgnoreCase))
        {
            return (process, [dll, "run"]);
        }

        return (process, ["run"]);
    }

    public static string SystemdUnit(ServiceSpec spec)
    {
        var stopSeconds = (int)Math.Ceiling(spec.ShutdownTimeout.TotalSeconds) + 15;
        var exec = string.Join(' ', new[] { spec.Executable }.Concat(spec.Arguments).Select(QuoteSystemd));
        var sb = new StringBuilder();
        sb.Append("# Written by `crm service install`; remove with `crm service uninstall`.\n");
        sb.Append("[Unit]\n");
        sb.Append("Description=CrmEngine headless CRM engine\n");
        sb.Append("Wants=network-online.target\n");
        sb.Append("After=network-online.target\n");
        sb.Append('\n');
        sb.Append("[Service]\n");
        sb.Append("Type=notify\n");
        sb.Append(CultureInfo.InvariantCulture, $"ExecStart={exec}\n");
        sb.Append(CultureInfo.InvariantCulture, $"WorkingDirectory={QuoteSystemd(spec.WorkingDirectory)}\n");
        if (!string.IsNullOrEmpty(spec.User))
        {
            sb.Append(CultureInfo.InvariantCulture, $"User={spec.User}\n");
        }

        sb.Append(CultureInfo.InvariantCulture, $"Environment=DOTNET_ENVIRONMENT={spec.EnvironmentName}\n");
        sb.Append("Environment=DOTNET_NOLOGO=1\n");
        sb.Append("Restart=on-failure\n");
        sb.Append("RestartSec=5\n");
        sb.Append("TimeoutStartSec=120\n");
        sb.Append(CultureInfo.InvariantCulture, $"TimeoutStopSec={stopSeconds}\n");
        sb.Append("KillSignal=SIGTERM\n");
        sb.Append("SyslogIdentifier=crm\n");
        sb.Append('\n');
        sb.Append("[Install]\n");
        sb.Append("WantedBy=multi-user.target\n");
        return sb.ToString();
    }

    private static string QuoteSystemd(string value) =>
        value.Any(c => char.IsWhiteSpace(c) || c is '"' or '\\' or ';')
            ? "\"" + value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal) + "\""
            : value;

    /// <summary>Writes the unit; returns the lines to print.</summary>
    public static IReadOnlyList<string> InstallSystemd(ServiceSpec spec, string? unitPath)
    {
        var isDefault = unitPath is null;
        var path = Path.GetFullPath(unitPath ?? Path.Combine(SystemdDirectory, spec.Name + ".service"));
        var text = SystemdUnit(spec);
        var existed = File.Exists(path);
        try
        {
            var dir = Path.GetDirectoryName(path)!;
            if (!Directory.Exists(dir))
            {
                if (isDefault)
                {
                    throw new CommandRefusedException($"{dir} does not exist: is this a systemd machine? Pass --unit-path to write the unit elsewhere.");
                }

                Directory.CreateDirectory(dir);
            }

            var temp = path + ".tmp";
            File.WriteAllText(temp, text, new UTF8Encoding(false));
            File.Move(temp, path, overwrite: true);
        }
        catch (UnauthorizedAccessException)
        {
            throw new CommandRefusedException($"cannot write {path}: permission denied (run it with sudo, or pass --unit-path).");
        }
        catch (IOException ex)
        {
            throw new CommandRefusedException($"cannot write {path}: {ex.Message}");
        }

        var lines = new List<string> { $"{(existed ? "replaced" : "wrote")} systemd unit {path} (service '{spec.Name}', ExecStart {spec.Executable} {string.Join(' ', spec.Arguments)})" };
        var output = "";
        if (isDefault && TryRun("systemctl", "daemon-reload", out output))
        {
            lines.Add("ran: systemctl daemon-reload");
            lines.Add($"start it with: sudo systemctl enable --now {spec.Name}");
        }
        else
        {
            if (isDefault)
            {
                lines.Add($"systemctl daemon-reload did not run ({output}); run it yourself:");
            }
            else
            {
                lines.Add("to use it:");
                lines.Add($"  sudo cp {path} {SystemdDirectory}/{spec.Name}.service");
            }

            lines.Add("  sudo systemctl daemon-reload");
            lines.Add($"  sudo systemctl enable --now {spec.Name}");
        }

        lines.Add($"then: systemctl status {spec.Name}; journalctl -u {spec.Name} -f");
        return lines;
    }

    public static IReadOnlyList<string> UninstallSystemd(string name, string? unitPath)
    {
        var isDefault = unitPath is null;
        var path = Path.GetFullPath(unitPath ?? Path.Combine(SystemdDirectory, name + ".service"));
        if (!File.Exists(path))
        {
            throw new CommandRefusedException($"no unit file at {path}: nothing to uninstall.");
        }

        var lines = new List<string>();
        if (isDefault && TryRun("systemctl", $"disable --now {name}", out _))
        {
            lines.Add($"ran: systemctl disable --now {name}");
        }

        try
        {
            File.Delete(path);
        }
        catch (UnauthorizedAccessException)
        {
            throw new CommandRefusedException($"cannot remove {path}: permission denied (run it with sudo).");
        }

        lines.Insert(0, $"removed systemd unit {path}");
        if (isDefault && TryRun("systemctl", "daemon-reload", out _))
        {
            lines.Add("ran: systemctl daemon-reload");
        }
        else if (!isDefault)
        {
            lines.Add($"if it was installed: sudo systemctl disable --now {name}; sudo rm {SystemdDirectory}/{name}.service; sudo systemctl daemon-reload");
        }

        return lines;
    }

    public static IReadOnlyList<string> InstallWindows(ServiceSpec spec)
    {
        var bin = string.Join(' ', new[] { spec.Executable }.Concat(spec.Arguments).Select(a => a.Contains(' ', StringComparison.Ordinal) ? $"\"{a}\"" : a));
        bin += $" --content-root \"{spec.WorkingDirectory}\"";
        if (!string.Equals(spec.Name, DefaultName, StringComparison.Ordinal))
        {
            // The process must know the name it was registered under (EngineHost: AddWindowsService).
            bin += $" --Host:ServiceName={spec.Name}";
        }

        var args = $"create {spec.Name} binPath= \"{bin.Replace("\"", "\\\"", StringComparison.Ordinal)}\" start= auto DisplayName= \"CrmEngine\"";
        if (!TryRun("sc.exe", args, out var output))
        {
            throw new CommandRefusedException($"sc.exe create {spec.Name} failed: {output}");
        }

        TryRun("sc.exe", $"description {spec.Name} \"CrmEngine headless CRM engine\"", out _);
        TryRun("sc.exe", $"failure {spec.Name} reset= 86400 actions= restart/5000/restart/5000/restart/60000", out _);
        return [$"registered Windows service '{spec.Name}': {bin}", $"start it with: sc.exe start {spec.Name}"];
    }

    public static IReadOnlyList<string> UninstallWindows(string name)
    {
        TryRun("sc.exe", $"stop {name}", out _);
        if (!TryRun("sc.exe", $"delete {name}", out var output))
        {
            throw new CommandRefusedException($"sc.exe delete {name} failed: {output}");
        }

        return [$"removed Windows service '{name}'"];
    }

    private static bool TryRun(string file, string arguments, out string output)
    {
        try
        {
            using var process = Process.Start(new ProcessStartInfo(file, arguments)
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                RedirectStandardInput = true,
                UseShellExecute = false,
            });
            if (process is null)
            {
                output = $"{file} did not start";
                return false;
            }

            process.StandardInput.Close();
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit(30_000))
            {
                process.Kill(entireProcessTree: true);
                output = $"{file} {arguments} did not finish in 30 s";
                return false;
            }

            output = (stderr.Result + stdout.Result).Trim().ReplaceLineEndings(" ");
            return process.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            output = $"{file} not available: {ex.Message}";
            return false;
        }
    }
}
