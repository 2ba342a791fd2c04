using System.Diagnostics;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text;
using Xunit.Abstractions;

[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace CrmEngine.Host.Tests;

/// <summary>The real <c>crm</c> process (<c>dotnet crm.dll ...</c>) with its output captured line by line.</summary>
public sealed partial class CrmProcess : IDisposable
{
    /// <summary>Generous upper bound for the engine to get ready on a busy CI machine (not a timing assertion).</summary>
    public static readonly TimeSpan StartBound = TimeSpan.FromMinutes(3);

    private readonly Process _process;
    private readonly List<string> _lines = [];
    private readonly object _gate = new();
    private readonly TaskCompletionSource _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly ITestOutputHelper? _output;
    private int _stdoutOpen = 1;
    private int _stderrOpen = 1;

    public static string HostOutput { get; } =
        typeof(CrmProcess).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "CrmHostOutput").Value!;

    public static string CrmDll => Path.Combine(HostOutput, "crm.dll");

    public static string BundledPlugins => Path.Combine(HostOutput, "plugins");

    public static string FixturePlugins => Path.Combine(AppContext.BaseDirectory, "host-fixture-plugins");

    private CrmProcess(string workingDirectory, IReadOnlyList<string> args, ITestOutputHelper? output,
        IReadOnlyDictionary<string, string>? environment = null, string? shell = null)
    {
        _output = output;
        if (!File.Exists(CrmDll))
        {
            throw new InvalidOperationException($"The host was not built: {CrmDll} is missing.");
        }

        var start = new ProcessStartInfo(shell ?? "dotnet")
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        if (shell is not null)
        {
            // The shell stays the parent of dotnet (the command is not the last one, so it is not exec'd).
            start.ArgumentList.Add("-c");
            start.ArgumentList.Add("dotnet \"$0\" \"$@\"; exit $?");
        }

        start.ArgumentList.Add(CrmDll);
        foreach (var a in args)
        {
            start.ArgumentList.Add(a);
        }

        foreach (var key in start.Environment.Keys.ToList())
        {
            if (key.StartsWith("CRM_", StringComparison.Ordinal) || key is "DOTNET_ENVIRONMENT" or "ASPNETCORE_ENVIRONMENT")
            {
                start.Environment.Remove(key);
            }
        }

        start.Environment["DOTNET_NOLOGO"] = "1";
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[key] = value;
        }

        _process = new Process { StartInfo = start, EnableRaisingEvents = true };
        _process.OutputDataReceived += (_, e) => OnLine(e.Data, "", ref _stdoutOpen);
        _process.ErrorDataReceived += (_, e) => OnLine(e.Data, "[stderr] ", ref _stderrOpen);
        _process.Start();
        _process.StandardInput.Close();
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    public static CrmProcess Start(string workingDirectory, ITestOutputHelper? output, params string[] args) =>
        new(workingDirectory, args, output);

    public static CrmProcess StartWith(IReadOnlyDictionary<string, string> environment, string workingDirectory,
        ITestOutputHelper? output, params string[] args) =>
        new(workingDirectory, args, output, environment);

    /// <summary>Starts crm as the child of <paramref name="shell"/> (a POSIX shell, possibly under another name).</summary>
    public static CrmProcess StartUnderShell(string shell, IReadOnlyDictionary<string, string> environment, string workingDirectory,
        ITestOutputHelper? output, params string[] args) =>
        new(workingDirectory, args, output, environment, shell);

    /// <summary>Runs a command to its end; returns the exit code and everything it printed.</summary>
    public static async Task<(int ExitCode, string Output)> RunAsync(string workingDirectory, ITestOutputHelper? output, params string[] args)
    {
        using var p = Start(workingDirectory, output, args);
        var code = await p.WaitForExitAsync(TimeSpan.FromMinutes(2));
        return (code, p.Output);
    }

    public int Id => _process.Id;

    public string Output
    {
        get
        {
            lock (_gate)
            {
                return string.Join('\n', _lines);
            }
        }
    }

    public IReadOnlyList<string> Lines
    {
        get
        {
            lock (_gate)
            {
                return _lines.ToList();
            }
        }
    }

    private void OnLine(string? line, string prefix, ref int open)
    {
        if (line is null)
        {
            if (Interlocked.Exchange(ref open, 0) == 1 && Volatile.Read(ref _stdoutOpen) == 0 && Volatile.Read(ref _stderrOpen) == 0)
            {
                _exited.TrySetResult();
            }

            return;
        }

        lock (_gate)
        {
            _lines.Add(prefix + line);
        }

        try
        {
            _output?.WriteLine(prefix + line);
        }
        catch (InvalidOperationException)
        {
            // The test already finished.
        }
    }

    /// <summary>Waits for a line matching <paramref name="predicate"/>; fails with the output when the process ends first.</summary>
    public async Task<string> WaitForLineAsync(Func<string, bool> predicate, TimeSpan? bound = null)
    {
        var until = DateTime.UtcNow + (bound ?? StartBound);
        while (true)
        {
            var hit = Lines.FirstOrDefault(predicate);
            if (hit is not null)
            {
                return hit;
            }

            if (_process.HasExited && _exited.Task.IsCompleted)
            {
                hit = Lines.FirstOrDefault(predicate);
                return hit ?? throw new Xunit.Sdk.XunitException($"crm exited with {_process.ExitCode} before the expected line. Output:\n{Output}");
            }

            if (DateTime.UtcNow > until)
            {
                throw new Xunit.Sdk.XunitException($"the expected line did not come. Output:\n{Output}");
            }

            await Task.Delay(50);
        }
    }

    public Task<string> WaitForReadyAsync() => WaitForLineAsync(l => l.Contains("CrmEngine ready", StringComparison.Ordinal));

    public async Task<int> WaitForExitAsync(TimeSpan bound)
    {
        using var cts = new CancellationTokenSource(bound);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
            await _exited.Task.WaitAsync(TimeSpan.FromSeconds(10));
        }
        catch (OperationCanceledException)
        {
            throw new Xunit.Sdk.XunitException($"crm did not exit. Output:\n{Output}");
        }

        return _process.ExitCode;
    }

    public void Signal(int signal)
    {
        if (Kill(_process.Id, signal) != 0)
        {
            throw new InvalidOperationException($"kill({_process.Id}, {signal}) failed: errno {Marshal.GetLastPInvokeError()}");
        }
    }

    public const int SIGINT = 2;
    public const int SIGKILL = 9;
    public const int SIGTERM = 15;

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(10_000);
            }
        }
        catch (InvalidOperationException)
        {
            // Not started or already gone.
        }

        _process.Dispose();
    }
}
