using System.Net;
using System.Net.Sockets;

namespace CrmEngine.Webhooks;

/// <summary>
/// Keeps webhook deliveries away from the engine's own network (SSRF): loopback, private (RFC 1918, unique local),
/// link-local (cloud metadata at 169.254.169.254), carrier-grade NAT, multicast and reserved addresses are refused
/// unless <c>Webhooks:AllowPrivateTargets</c> is true. The URL is checked when a subscription is saved, and every
/// address a host name resolves to is checked again when a delivery connects (the connection goes to the checked
/// address, so a name that changes its answer in between gains nothing). Redirects are never followed.
/// <c>Webhooks:AllowedHosts</c> (<see cref="TargetPolicy"/>) lets named receivers and address ranges through anyway.
/// </summary>
internal static class TargetGuard
{
    /// <summary>Why the URL's host is refused by its text (an address or localhost), or null.</summary>
    public static string? RefuseByText(Uri url, TargetPolicy policy)
    {
        var host = url.IdnHost.Trim('[', ']').TrimEnd('.');
        if (policy.AllowPrivate || policy.AllowsName(host))
        {
            return null;
        }

        if (host.Equals("localhost", StringComparison.OrdinalIgnoreCase) || host.EndsWith(".localhost", StringComparison.OrdinalIgnoreCase))
        {
            return $"'{url.Host}' is this machine";
        }

        return IPAddress.TryParse(host, out var address) && !policy.AllowsAddress(address) && Describe(address) is { } why ? $"{address} is {why}" : null;
    }

    /// <summary>What kind of non-public address this is, or null for a public one.</summary>
    public static string? Describe(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        if (address.AddressFamily == AddressFamily.InterNetwork)
        {
            var b = address.GetAddressBytes();
            return b[0] switch
            {
                0 => "a 'this network' address",
                10 => "a private address (10.0.0.0/8)",
                127 => "a loopback address",
                100 when (b[1] & 0xC0) == 64 => "a carrier-grade NAT address (100.64.0.0/10)",
                169 when b[1] == 254 => "a link-local address (169.254.0.0/16, where cloud metadata services answer)",
                172 when (b[1] & 0xF0) == 16 => "a private address (172.16.0.0/12)",
                192 when b[1] == 168 => "a private address (192.168.0.0/16)",
                192 when b[1] == 0 && b[2] == 0 => "a reserved address (192.0.0.0/24)",
                198 when (b[1] & 0xFE) == 18 => "a benchmarking address (198.18.0.0/15)",
                >= 224 => "a multicast or reserved address",
                _ => null,
            };
        }

        if (address.AddressFamily == AddressFamily.InterNetworkV6)
        {
            var b = address.GetAddressBytes();
            if (IPAddress.IPv6Loopback.Equals(address))
            {
                return "a loopback address";
            }

            if (IPAddress.IPv6Any.Equals(address))
            {
                return "an unspecified address";
            }

            if (address.IsIPv6LinkLocal || address.IsIPv6SiteLocal)
            {
                return "a link-local address";
            }

            if ((b[0] & 0xFE) == 0xFC)
            {
                return "a unique local (private) address (fc00::/7)";
            }

            if (address.IsIPv6Multicast)
            {
                return "a multicast address";
            }

            // NAT64 (64:ff9b::/96) carries an IPv4 address: judge that one.
            if (b[0] == 0 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b && b.AsSpan(4, 8).IndexOfAnyExcept((byte)0) < 0)
            {
                return Describe(new IPAddress(b.AsSpan(12, 4)));
            }

            return null;
        }

        return "not an IP address";
    }

    /// <summary>
    /// Connects to <paramref name="host"/>:<paramref name="port"/> through the first acceptable address it resolves to;
    /// refuses (HttpRequestException naming the address and the switch) when every address is non-public.
    /// </summary>
    public static async ValueTask<Stream> ConnectAsync(string host, int port, TargetPolicy policy, CancellationToken cancellationToken)
    {
        var named = policy.AllowPrivate || policy.AllowsName(host.Trim('[', ']').TrimEnd('.'));
        var addresses = IPAddress.TryParse(host.Trim('[', ']'), out var literal)
            ? [literal]
            : await Dns.GetHostAddressesAsync(host, cancellationToken).ConfigureAwait(false);
        var refused = new List<string>();
        var usable = new List<IPAddress>();
        foreach (var address in addresses)
        {
            if (!named && !policy.AllowsAddress(address) && Describe(address) is { } why)
            {
                refused.Add($"{address} ({why})");
            }
            else
            {
                usable.Add(address);
            }
        }

        if (usable.Count == 0)
        {
            throw new TargetRefusedException(refused.Count == 0
                ? $"{host} resolves to no address"
                : $"refused: {host} resolves to {string.Join(", ", refused)}; deliveries go only to public addresses unless Webhooks:AllowedHosts lists the host or its range (or Webhooks:AllowPrivateTargets is true)");
        }

        Exception? last = null;
        foreach (var address in usable)
        {
            var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                await socket.ConnectAsync(new IPEndPoint(address, port), cancellationToken).ConfigureAwait(false);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch (SocketException ex)
            {
                socket.Dispose();
                last = ex;
            }
        }

        throw new HttpRequestException($"could not connect to {host}:{port}: {last?.Message}", last);
    }
}

/// <summary>
/// Which non-public receivers are allowed: all of them (<c>Webhooks:AllowPrivateTargets</c>), or the exact host names and
/// CIDR ranges of <c>Webhooks:AllowedHosts</c>. Built once from the options; entries are checked at start.
/// </summary>
internal sealed class TargetPolicy
{
    private readonly HashSet<string> _names = new(StringComparer.OrdinalIgnoreCase);
    private readonly List<IPNetwork> _networks = [];

    public TargetPolicy(bool allowPrivate, IEnumerable<string>? allowedHosts)
    {
        AllowPrivate = allowPrivate;
        foreach (var entry in allowedHosts ?? [])
        {
            var text = entry.Trim();
            if (TryNetwork(text, out var network))
            {
                _networks.Add(network);
            }
            else if (text.Length > 0)
            {
                _names.Add(text.TrimEnd('.'));
            }
        }
    }

    public static TargetPolicy From(WebhookOptions options) => new(options.AllowPrivateTargets, options.AllowedHosts);

    public bool AllowPrivate { get; }

    public bool AllowsName(string host) => _names.Contains(host);

    public bool AllowsAddress(IPAddress address)
    {
        var a = address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;
        return _networks.Any(n => n.Contains(a));
    }

    /// <summary>
    /// Problems of <c>Webhooks:AllowedHosts</c> entries, one per bad entry, keyed by the entry's place
    /// (<c>AllowedHosts:1</c>); <see cref="WebhookOptions"/> reports them, so the start and <c>crm config check</c> both do.
    /// </summary>
    public static IReadOnlyList<(string Key, string Value, string Problem)> Problems(IEnumerable<string>? entries)
    {
        var problems = new List<(string, string, string)>();
        var i = 0;
        foreach (var entry in entries ?? [])
        {
            var text = entry?.Trim() ?? "";
            var looksLikeRange = text.Contains('/', StringComparison.Ordinal) || IPAddress.TryParse(text, out _);
            var key = $"{nameof(WebhookOptions.AllowedHosts)}:{i}";
            if (text.Length == 0)
            {
                problems.Add((key, text, "is empty"));
            }
            else if (looksLikeRange ? !TryNetwork(text, out _) : Uri.CheckHostName(text) != UriHostNameType.Dns)
            {
                problems.Add((key, text, "is neither a host name nor an address range in CIDR notation (for example 10.20.0.0/16)"));
            }

            i++;
        }

        return problems;
    }

    private static bool TryNetwork(string text, out IPNetwork network)
    {
        if (IPAddress.TryParse(text, out var single))
        {
            network = new IPNetwork(single, single.AddressFamily == AddressFamily.InterNetwork ? 32 : 128);
            return true;
        }

        return IPNetwork.TryParse(text, out network);
    }
}

/// <summary>
/// The start-time check in full words (section, key and value of each bad entry), for hosts that start the engine without
/// <c>crm config check</c> before it; the same rule as <see cref="WebhookOptions.Validate"/>, so both always agree.
/// </summary>
internal sealed class AllowedHostsStartCheck : Microsoft.Extensions.Options.IValidateOptions<WebhookOptions>
{
    public Microsoft.Extensions.Options.ValidateOptionsResult Validate(string? name, WebhookOptions options) =>
        TargetPolicy.Problems(options.AllowedHosts) is { Count: > 0 } problems
            ? Microsoft.Extensions.Options.ValidateOptionsResult.Fail(problems.Select(p => $"{WebhookOptions.Section}:{p.Key} '{p.Value}' {p.Problem}."))
            : Microsoft.Extensions.Options.ValidateOptionsResult.Success;
}

/// <summary>A delivery target refused by <see cref="TargetGuard"/>: trying again cannot help, so the delivery is parked at once.</summary>
internal sealed class TargetRefusedException(string message) : HttpRequestException(message);
