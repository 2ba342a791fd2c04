using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using CrmEngine.Core;
using CrmEngine.Host.Configuration;
using Microsoft.Extensions.Configuration;

namespace CrmEngine.Host.Control;

/// <summary>
/// Where the running service listens for admin requests: a Unix domain socket in the data folder
/// (Linux, macOS) or a named pipe (Windows). Server and client compute it from the same configuration.
/// </summary>
internal sealed record ControlEndpoint(string DataDirectory, string? SocketPath, string? PipeName, bool Enabled)
{
    public const string DefaultSocketName = "crm.sock";

    /// <summary>Socket paths longer than this do not fit in sockaddr_un on every OS.</summary>
    private const int MaxSocketPath = 100;

    public static ControlEndpoint From(IConfiguration configuration, string contentRoot)
    {
        var store = new StoreOptions();
        configuration.GetSection(StoreOptions.Section).Bind(store);
        var host = new CrmHostOptions();
        configuration.GetSection(CrmHostOptions.Section).Bind(host);
        var dataDirectory = Path.GetFullPath(store.DataDirectory, contentRoot);
        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(dataDirectory)))[..16];

        if (OperatingSystem.IsWindows())
        {
            return new ControlEndpoint(dataDirectory, null, host.ControlPipe ?? $"crm-{hash}", host.ControlEnabled);
        }

        var socket = Path.GetFullPath(host.ControlSocket ?? DefaultSocketName, dataDirectory);
        if (Encoding.UTF8.GetByteCount(socket) > MaxSocketPath)
        {
            socket = Path.Combine(Path.GetTempPath(), $"crm-{hash}.sock");
        }

        return new ControlEndpoint(dataDirectory, socket, null, host.ControlEnabled);
    }

    public override string ToString() => SocketPath ?? $@"\\.\pipe\{PipeName}";

    /// <summary>True when something accepts connections on the endpoint: the service is running.</summary>
    public async Task<bool> IsListeningAsync(CancellationToken cancellationToken = default)
    {
        try
        {
            await using var stream = await ConnectAsync(TimeSpan.FromSeconds(2), cancellationToken);
            return true;
        }
        catch (Exception ex) when (ex is SocketException or IOException or TimeoutException or UnauthorizedAccessException or OperationCanceledException)
        {
            if (ex is OperationCanceledException && cancellationToken.IsCancellationRequested)
            {
                throw;
            }

            return false;
        }
    }

    public async Task<Stream> ConnectAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        if (PipeName is not null)
        {
            var pipe = new System.IO.Pipes.NamedPipeClientStream(".", PipeName, System.IO.Pipes.PipeDirection.InOut,
                System.IO.Pipes.PipeOptions.Asynchronous);
            try
            {
                await pipe.ConnectAsync((int)timeout.TotalMilliseconds, cancellationToken);
                return pipe;
            }
            catch
            {
                await pipe.DisposeAsync();
                throw;
            }
        }

        if (!File.Exists(SocketPath))
        {
            throw new IOException($"no control socket at {SocketPath}");
        }

        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            cts.CancelAfter(timeout);
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(SocketPath!), cts.Token);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }
}
