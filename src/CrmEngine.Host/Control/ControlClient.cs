using System.Net.Http.Json;
using System.Text.Json;

namespace CrmEngine.Host.Control;

/// <summary>Talks to the running service over its control channel (see <see cref="ControlEndpoint"/>).</summary>
internal sealed class ControlClient : IDisposable
{
    private readonly HttpClient _http;

    public ControlClient(ControlEndpoint endpoint, TimeSpan? timeout = null)
    {
        Endpoint = endpoint;
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, ct) => await endpoint.ConnectAsync(TimeSpan.FromSeconds(5), ct),
            UseProxy = false,
        };
        _http = new HttpClient(handler) { BaseAddress = new Uri("http://crm-control/"), Timeout = timeout ?? TimeSpan.FromMinutes(30) };
    }

    public ControlEndpoint Endpoint { get; }

    public async Task<T> GetAsync<T>(string path, CancellationToken cancellationToken)
    {
        using var response = await _http.GetAsync(path, cancellationToken);
        return await ReadAsync<T>(response, cancellationToken);
    }

    public async Task<T> PostAsync<TBody, T>(string path, TBody body, CancellationToken cancellationToken)
    {
        using var response = await _http.PostAsJsonAsync(path, body, ControlJson.Options, cancellationToken);
        return await ReadAsync<T>(response, cancellationToken);
    }

    private static async Task<T> ReadAsync<T>(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        if (!response.IsSuccessStatusCode)
        {
            string message;
            try
            {
                var error = await response.Content.ReadFromJsonAsync<ControlError>(ControlJson.Options, cancellationToken);
                message = error?.Error ?? response.ReasonPhrase ?? "error";
            }
            catch (JsonException)
            {
                message = response.ReasonPhrase ?? "error";
            }

            throw new CommandRefusedException(message);
        }

        return await response.Content.ReadFromJsonAsync<T>(ControlJson.Options, cancellationToken)
               ?? throw new CommandRefusedException("the service sent an empty answer");
    }

    public void Dispose() => _http.Dispose();
}

internal static class ControlJson
{
    public static readonly JsonSerializerOptions Options = Create();

    private static JsonSerializerOptions Create()
    {
        var options = new JsonSerializerOptions(JsonSerializerDefaults.Web) { WriteIndented = false };
        options.Converters.Add(new System.Text.Json.Serialization.JsonStringEnumConverter());
        return options;
    }
}

internal sealed record ControlError(string Error);

internal sealed record PluginDto(string Id, string Name, string? Version, string Folder, string State, string? Reason);

internal sealed record HealthDto(
    string Status,
    int ProcessId,
    string Version,
    DateTimeOffset StartedAt,
    DateTimeOffset? ReadyAt,
    string ContentRoot,
    string Environment,
    string Database,
    long LastChangeSequence,
    IReadOnlyList<PluginDto> Plugins,
    CrmEngine.Scheduling.Jobs.SchedulerHealth? Scheduler = null);

internal sealed record BackupRequest(string Path);

internal sealed record BackupResult(string Path, long Bytes);
