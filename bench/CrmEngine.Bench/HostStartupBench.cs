using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace CrmEngine.Bench;

/// <summary>
/// Host start-up time to "CrmEngine ready": starts the real <c>crm</c> binary (build output of
/// src/CrmEngine.Host) on an empty temporary content root, several times, and reports the median.
/// Baseline in the same run: the same binary doing no engine work (<c>crm --help</c>), i.e. the bare
/// .NET start plus command parsing.
/// </summary>
internal static partial class HostStartupBench
{
    public sealed record Result(TimeSpan Ready, TimeSpan ReadyReported, TimeSpan Baseline, int Runs);

    /// <summary>Null (with the reason) when the host has not been built.</summary>
    public static Result? Measure(int runs, out string? reason)
    {
        var crm = FindCrmDll();
        if (crm is null)
        {
            reason = "build src/CrmEngine.Host first (dotnet build -c Release src/CrmEngine.Host)";
            return null;
        }

        var ready = new List<TimeSpan>();
        var reported = new List<TimeSpan>();
        var baseline = new List<TimeSpan>();
        for (var i = 0; i < runs; i++)
        {
            var (wall, self) = StartToReady(crm);
            ready.Add(wall);
            reported.Add(self);
            baseline.Add(RunToEnd(crm, "--help"));
        }

        reason = null;
        return new Result(Median(ready), Median(reported), Median(baseline), runs);
    }

    private static TimeSpan Median(List<TimeSpan> values) => values.Order().ElementAt(values.Count / 2);

    private static string? FindCrmDll()
    {
        var configuration = AppContext.BaseDirectory.Contains("/Release/", StringComparison.Ordinal) ? "Release" : "Debug";
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            foreach (var cfg in new[] { configuration, configuration == "Release" ? "Debug" : "Release" })
            {
                var candidate = Path.Combine(dir.FullName, "src", "CrmEngine.Host", "bin", cfg, "net10.0", "crm.dll");
                if (File.Exists(candidate))
                {
                    return candidate;
                }
            }
        }

        return null;
    }

    private static (TimeSpan Wall, TimeSpan Reported) StartToReady(string crm)
    {
        var root = Path.Combine(Path.GetTempPath(), "crm-bench-host-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(root);
        try
        {
            var hostDir = Path.GetDirectoryName(crm)!;
            var settings = JsonNode.Parse(File.ReadAllText(Path.Combine(hostDir, "appsettings.json")))!.AsObject();
            settings["PluginHost"]!["Directories"] = new JsonArray(Path.Combine(hostDir, "plugins"));
            File.WriteAllText(Path.Combine(root, "appsettings.json"), settings.ToJsonString());

            using var process = Start(crm, root);
            var sw = Stopwatch.StartNew();
            var readyAt = TimeSpan.Zero;
            var reported = TimeSpan.Zero;
            using var done = new ManualResetEventSlim();
            process.OutputDataReceived += (_, e) =>
            {
                if (e.Data is { } line && ReadyLine().Match(line) is { Success: true } m && !done.IsSet)
                {
                    readyAt = sw.Elapsed;
                    reported = TimeSpan.FromMilliseconds(double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture));
                    done.Set();
                }
            };
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            if (!done.Wait(TimeSpan.FromMinutes(2)))
            {
                throw new InvalidOperationException("crm did not get ready within 2 minutes");
            }

            process.Kill(entireProcessTree: true);
            process.WaitForExit();
            return (readyAt, reported);
        }
        finally
        {
            try
            {
                Directory.Delete(root, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    private static TimeSpan RunToEnd(string crm, string argument)
    {
        using var process = Start(crm, Path.GetTempPath(), argument);
        var sw = Stopwatch.StartNew();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        process.WaitForExit();
        return sw.Elapsed;
    }

    private static Process Start(string crm, string workingDirectory, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(crm);
        foreach (var a in args)
        {
            start.ArgumentList.Add(a);
        }

        start.Environment["DOTNET_NOLOGO"] = "1";
        var process = Process.Start(start) ?? throw new InvalidOperationException("dotnet did not start");
        process.StandardInput.Close();
        return process;
    }

    [GeneratedRegex(@"CrmEngine ready in (\d+) ms")]
    private static partial Regex ReadyLine();
}
