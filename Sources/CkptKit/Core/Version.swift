public enum CkptVersion { public static let string = "0.1.0" }
