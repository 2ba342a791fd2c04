using System.ComponentModel.DataAnnotations;

namespace CrmEngine.Host.Configuration;

/// <summary>Section <c>Host</c>: the process around the engine.</summary>
public sealed class CrmHostOptions
{
    public const string Section = "Host";

    /// <summary>How long a stop (Ctrl+C, SIGTERM, service stop) may take before the host gives up waiting.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "00:10:00")]
    public TimeSpan ShutdownTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// The local control channel (Unix domain socket in the data folder, named pipe on Windows) that
    /// <c>crm backup</c>, <c>crm plugins list</c> and <c>crm restore</c> use to talk to the running service.
    /// </summary>
    public bool ControlEnabled { get; set; } = true;

    /// <summary>Socket file of the control channel; relative to the data folder. Default <c>crm.sock</c>.</summary>
    [RegularExpression(@"^[^\0]+$", ErrorMessage = "Host:ControlSocket must be a file path")]
    public string? ControlSocket { get; set; }

    /// <summary>
    /// Windows only: the service name the process runs under (<c>crm service install --name</c> writes it into the
    /// service's command line when it is not the default <c>crm</c>).
    /// </summary>
    [RegularExpression(@"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,100}$", ErrorMessage = "Host:ServiceName may hold letters, digits, '.', '_', '-' and '@' only")]
    public string ServiceName { get; set; } = "crm";

    /// <summary>Windows only: the named pipe of the control channel. Default <c>crm-</c> plus a hash of the data folder.</summary>
    [RegularExpression(@"^[A-Za-z0-9._-]{1,200}$", ErrorMessage = "Host:ControlPipe may hold letters, digits, '.', '_' and '-' only")]
    public string? ControlPipe { get; set; }
}
