using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using MimeKit;

namespace CrmEngine.Mail.Tests.Support;

/// <summary>
/// A real SMTP server on a free loopback port: Debian's aiosmtpd with the handler in crm_smtp_fixture.py, storing every
/// accepted message in a maildir. <see cref="Plan"/> scripts replies (4xx, 5xx) for the next messages; <see cref="Stop"/>
/// and <see cref="Start"/> take it down and bring it back on the same port. A missing aiosmtpd fails the test (never a
/// skip): scripts/test.sh installs python3-aiosmtpd.
/// </summary>
public sealed class SmtpServer : IDisposable
{
    public const string Executable = "/usr/bin/aiosmtpd";
    private Process? _process;
    private string _stderr = "";

    public SmtpServer(string folder, int? port = null)
    {
        if (!File.Exists(Executable))
        {
            throw new InvalidOperationException($"{Executable} is missing: install the Debian package python3-aiosmtpd (scripts/test.sh does).");
        }

        Folder = folder;
        Directory.CreateDirectory(Folder);
        Port = port ?? FreePort();
        Start();
    }

    public string Folder { get; }

    public int Port { get; }

    public string Maildir => Path.Combine(Folder, "maildir");

    public string PlanFile => Path.Combine(Folder, "plan.txt");

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Replies to the next messages, in order ("ok", "451 4.3.0 try later", "550 5.1.1 no such user").</summary>
    public void Plan(params string[] replies) => File.WriteAllLines(PlanFile, replies);

    public void Start()
    {
        var start = new ProcessStartInfo(Executable)
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        foreach (var a in new[] { "-n", "-l", $"127.0.0.1:{Port}", "-c", "crm_smtp_fixture.Handler", Maildir, PlanFile })
        {
            start.ArgumentList.Add(a);
        }

        start.Environment["PYTHONPATH"] = Path.Combine(AppContext.BaseDirectory, "Support");
        start.Environment["PYTHONDONTWRITEBYTECODE"] = "1";
        var process = Process.Start(start)!;
        process.ErrorDataReceived += (_, e) => _stderr += e.Data + "\n";
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
        _process = process;

        var until = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (true)
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException($"aiosmtpd exited with {process.ExitCode}: {_stderr}");
            }

            try
            {
                using var client = new TcpClient();
                client.Connect(IPAddress.Loopback, Port);
                return;
            }
            catch (SocketException) when (DateTime.UtcNow < until)
            {
                Thread.Sleep(50);
            }
        }
    }

    public void Stop()
    {
        if (_process is { } p)
        {
            _process = null;
            try
            {
                p.Kill(entireProcessTree: true);
                p.WaitForExit(10_000);
            }
            catch (InvalidOperationException)
            {
            }

            p.Dispose();
        }
    }

    /// <summary>The messages received so far, oldest first (maildir "new"), with the fixture's X-Peer header.</summary>
    public List<MimeMessage> Received()
    {
        var folder = Path.Combine(Maildir, "new");
        if (!Directory.Exists(folder))
        {
            return [];
        }

        return Directory.GetFiles(folder)
            .Select(f => (File: f, Time: File.GetLastWriteTimeUtc(f)))
            .OrderBy(f => f.Time).ThenBy(f => f.File, StringComparer.Ordinal)
            .Select(f => MimeMessage.Load(f.File))
            .ToList();
    }

    /// <summary>Raw bytes of every received message (to check how headers were encoded on the wire).</summary>
    public List<string> ReceivedRaw()
    {
        var folder = Path.Combine(Maildir, "new");
        return Directory.Exists(folder) ? Directory.GetFiles(folder).Select(File.ReadAllText).ToList() : [];
    }

    public void Dispose() => Stop();
}
