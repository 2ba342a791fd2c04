using System.Globalization;
using System.Net.Sockets;
using System.Text;
using Xunit.Abstractions;

namespace CrmEngine.Host.Tests;

/// <summary>
/// Type=notify for real: the host's systemd lifetime switches on when its parent process is named
/// "systemd". The test runs crm under a shell called "systemd" with NOTIFY_SOCKET pointing at a datagram
/// socket it listens on, and checks READY=1 once the engine is ready and STOPPING=1 on SIGTERM.
/// </summary>
public sealed class SystemdNotifyTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Under_systemd_it_sends_READY_when_ready_and_STOPPING_on_SIGTERM()
    {
        Assert.True(File.Exists("/bin/sh"), "/bin/sh is needed to stand in for systemd");
        using var root = new TestRoot();
        var shim = Path.Combine(root.Path, "shim");
        Directory.CreateDirectory(shim);
        var systemd = Path.Combine(shim, "systemd");
        File.CreateSymbolicLink(systemd, "/bin/sh");

        var notifyPath = Path.Combine(root.Path, "notify.sock");
        using var notify = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        notify.Bind(new UnixDomainSocketEndPoint(notifyPath));
        var messages = new List<string>();
        var receiving = Task.Run(async () =>
        {
            var buffer = new byte[4096];
            while (true)
            {
                int n;
                try
                {
                    n = await notify.ReceiveAsync(buffer, SocketFlags.None);
                }
                catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
                {
                    return;
                }

                lock (messages)
                {
                    messages.Add(Encoding.UTF8.GetString(buffer, 0, n));
                }
            }
        });

        using var crm = CrmProcess.StartUnderShell(systemd, new Dictionary<string, string> { ["NOTIFY_SOCKET"] = notifyPath }, root.Path, output, "run");
        await crm.WaitForReadyAsync();
        await WaitForMessageAsync(messages, "READY=1");

        var pid = int.Parse((await File.ReadAllTextAsync(Path.Combine(root.DataDirectory, "crm.pid"))).Trim(), CultureInfo.InvariantCulture);
        Assert.NotEqual(crm.Id, pid);
        Assert.Equal(0, Kill(pid, CrmProcess.SIGTERM));

        Assert.Equal(0, await crm.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        await WaitForMessageAsync(messages, "STOPPING=1");
        notify.Dispose();
        await receiving;
    }

    private static async Task WaitForMessageAsync(List<string> messages, string expected)
    {
        var until = DateTime.UtcNow + CrmProcess.StartBound;
        while (true)
        {
            lock (messages)
            {
                if (messages.Any(m => m.Contains(expected, StringComparison.Ordinal)))
                {
                    return;
                }
            }

            Assert.True(DateTime.UtcNow < until, $"systemd was not told {expected}; got: {string.Join(" | ", messages)}");
            await Task.Delay(50);
        }
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    [System.Runtime.InteropServices.DefaultDllImportSearchPaths(System.Runtime.InteropServices.DllImportSearchPath.SafeDirectories)]
    private static extern int Kill(int pid, int signal);
}
